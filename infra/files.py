"""Folders' files: the private bucket that keeps uploads' original bytes, and their ingestion.

The bucket is encrypted at rest (S3-managed keys), blocks every kind of public access, refuses
plain HTTP and is kept when the stack is deleted (it holds users' documents). An upload is
announced on an SQS queue; the ingest function consumes it and parses, chunks and embeds the file.
A message the function does not finish (an error, or a timeout: the file's lease outlives it)
comes back after the visibility timeout, and the next delivery resumes from the chunks already
stored; after ``MAX_RECEIVES`` deliveries it goes to the dead-letter queue. No periodic sweep: a
paused database is woken only by uploads (and by their dead letters).

The dead-letter queue feeds a function of its own (``functions/dead_letters``): the file or transfer
job a dead letter names, if still unfinished and no run is at it, ends in ``error`` with a reason that
says it was given up after ``MAX_RECEIVES`` deliveries and what to do (upload the file again, start a
new upload session, export again), through the same failure paths as a bad bundle or an unreadable
file: a failed import's rows (in their hidden organization) and uploaded bytes are removed, a failed
file keeps none of its chunks. Work finished meanwhile is left alone; work a run may still be at (its
lease not run out) is looked at again after the dead-letter queue's visibility timeout. Its own
function, not the ingest function with a second queue: a message may be dead-lettered because the
ingest function cannot run at all, and this one needs only the database and ``s3:DeleteObject``.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.service_function import FunctionAssets, FunctionNetwork, ServiceFunction, acknowledge
from o.config import env_name
from o.config.tools import TRANSFER_KEPT_DAYS

HANDLER = "functions.ingest.handler.handler"
DEAD_LETTER_HANDLER = "functions.dead_letters.handler.handler"
TIMEOUT = Duration.minutes(15)
# the file's lease: past the function's timeout, so a timed-out invocation's file is free again by
# the time its message comes back (the visibility timeout)
LEASE_SECONDS = 15 * 60 + 30
VISIBILITY = Duration.minutes(16)
MAX_RECEIVES = 5
# ending a dead letter's work: removing what a failed import's chunks wrote is one transaction
DEAD_LETTER_TIMEOUT = Duration.minutes(5)
# the largest file a direct upload (POST /v1/folders/{id}/upload) may carry: Lambda takes an invocation
# payload of 6 MB, and API Gateway hands it the body base64-encoded (4/3 larger) inside the event, with
# the multipart envelope and headers beside it. Larger files go through an upload session (a presigned
# S3 PUT: POST /v1/uploads/), which the 413 names.
DIRECT_UPLOAD_BYTES = 4_000_000
# the bucket's ARN as cdk-nag names it in a finding (its logical id in the stack)
OBJECTS = "FilesBucket7C17EE2E.Arn"


class Files(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        assets: FunctionAssets,
        network: FunctionNetwork,
        environment: dict[str, str],
        database_environment: dict[str, str],
    ) -> None:
        super().__init__(scope, construct_id)
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            removal_policy=RemovalPolicy.RETAIN,
            lifecycle_rules=[
                # uploaded bundles and exports (o/agent/uploads.py): transient, unlike folders' files
                s3.LifecycleRule(prefix="transfers/", expiration=Duration.days(TRANSFER_KEPT_DAYS)),
                s3.LifecycleRule(abort_incomplete_multipart_upload_after=Duration.days(1)),
            ],
        )
        acknowledge(
            self.bucket,
            ("AwsSolutions-S1", "objects are written and read only by O's functions, whose calls CloudTrail "
             "records; access logs would duplicate that at a cost"),
        )  # fmt: skip
        self.dead_letters = sqs.Queue(
            self,
            "DeadLetters",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
            # a dead letter whose work a run may still hold comes back once that run's lease has run out
            visibility_timeout=VISIBILITY,
        )
        acknowledge(self.dead_letters, ("AwsSolutions-SQS3", "this is the ingest queue's dead-letter queue"))
        self.queue = sqs.Queue(
            self,
            "Queue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            visibility_timeout=VISIBILITY,
            dead_letter_queue=sqs.DeadLetterQueue(queue=self.dead_letters, max_receive_count=MAX_RECEIVES),
        )
        self.service = ServiceFunction(
            self,
            "Ingest",
            assets=assets,
            handler=HANDLER,
            description="O file ingestion: parse, chunk and embed uploaded files, fed by the ingest queue",
            service="o-ingest",
            memory_mb=2048,
            timeout=TIMEOUT,
            environment={**environment, **self.environment(), env_name("files", "lease_seconds"): str(LEASE_SECONDS)},
            network=network,
        )
        self.function = self.service.function
        self.function.add_event_source(
            sources.SqsEventSource(self.queue, batch_size=1, report_batch_item_failures=True)
        )
        # GetObject: files' and upload sessions' bytes (bundle imports); PutObject: exports it writes (a
        # multipart upload past 8 MB, authorized as PutObject; aborted on a failure); DeleteObject: an uploaded
        # bundle once imported, and the file bytes an import stored before it failed
        self._grant(self.service, "s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload", "s3:DeleteObject")
        # a bundle import longer than one invocation hands itself on with a new message
        self.queue.grant_send_messages(self.function)
        self.dead_letter_service = self._dead_letter_function(assets, network, database_environment)

    def _dead_letter_function(
        self, assets: FunctionAssets, network: FunctionNetwork, database_environment: dict[str, str]
    ) -> ServiceFunction:
        """Ends the work of the ingest queue's dead letters; it knows the bucket (an import's bytes to
        delete), not the ingest queue (it announces nothing)."""
        service = ServiceFunction(
            self,
            "DeadLetterFunction",
            assets=assets,
            handler=DEAD_LETTER_HANDLER,
            description="O dead letters: ends in error the files and transfer jobs the ingest queue gave up on",
            service="o-ingest-dead-letters",
            memory_mb=512,
            timeout=DEAD_LETTER_TIMEOUT,
            environment={
                **database_environment,
                env_name("files", "bucket"): self.bucket.bucket_name,
                env_name("files", "lease_seconds"): str(LEASE_SECONDS),
                env_name("files", "max_receives"): str(MAX_RECEIVES),
            },
            network=network,
        )
        service.function.add_event_source(
            sources.SqsEventSource(self.dead_letters, batch_size=1, report_batch_item_failures=True)
        )
        # DeleteObject: a failed import's uploaded bundle (nothing else of the bucket)
        self._grant(service, "s3:DeleteObject")
        return service

    def environment(self) -> dict[str, str]:
        return {
            env_name("files", "bucket"): self.bucket.bucket_name,
            env_name("files", "ingest_queue_url"): self.queue.queue_url,
            env_name("files", "max_upload_bytes"): str(DIRECT_UPLOAD_BYTES),
        }

    def _grant(self, service: ServiceFunction, *actions: str) -> None:
        # exact actions (a grant_* helper would add s3:Abort*, s3:DeleteObject* and more)
        iam.Grant.add_to_principal(
            grantee=service.function, actions=list(actions), resource_arns=[self.bucket.arn_for_objects("*")]
        )
        acknowledge(
            service,
            (f"AwsSolutions-IAM5[Resource::<{OBJECTS}>/*]", "objects are keyed by organization, folder and "
             "upload id, all chosen at run time; the bucket holds nothing but these files"),
        )  # fmt: skip

    def grant_upload(self, service: ServiceFunction) -> None:
        """Store and delete files' bytes, and announce uploads and transfer jobs (what the API does).
        PutObject and GetObject also authorize the presigned URLs it signs (an upload session's PUT, an
        export's GET: S3 checks the signer's rights when the URL is used); GetObject its HeadObject of an
        upload session's bytes when it is completed."""
        self._grant(service, "s3:PutObject", "s3:GetObject", "s3:DeleteObject")
        self.queue.grant_send_messages(service.function)
