"""Folders' files: the private bucket that keeps uploads' original bytes, and their ingestion.

The bucket is encrypted at rest (S3-managed keys), blocks every kind of public access, refuses
plain HTTP and is kept when the stack is deleted (it holds users' documents). An upload is
announced on an SQS queue; the ingest function consumes it and parses, chunks and embeds the file.
A message the function does not finish (an error, or a timeout: the file's lease outlives it)
comes back after the visibility timeout, and the next delivery resumes from the chunks already
stored; after ``MAX_RECEIVES`` deliveries it goes to the dead-letter queue. No periodic sweep: a
paused database is woken only by uploads.
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
TIMEOUT = Duration.minutes(15)
# the file's lease: past the function's timeout, so a timed-out invocation's file is free again by
# the time its message comes back (the visibility timeout)
LEASE_SECONDS = 15 * 60 + 30
VISIBILITY = Duration.minutes(16)
MAX_RECEIVES = 5
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
