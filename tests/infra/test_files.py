"""The files bucket and the ingest queue: private, encrypted, TLS only; the API may store, delete
and announce uploads, the ingest function may read them, and nothing more."""

from __future__ import annotations

from typing import Any

from tests.infra.conftest import Synthesized


def _statements(synthesized: Synthesized, role_fragment: str) -> list[dict[str, Any]]:
    out = []
    for policy in synthesized.resources("AWS::IAM::Policy").values():
        roles = [r.get("Ref", "") for r in policy["Properties"].get("Roles", [])]
        if any(role_fragment in r for r in roles):
            out += policy["Properties"]["PolicyDocument"]["Statement"]
    return out


def _actions(statements: list[dict[str, Any]]) -> set[str]:
    actions: set[str] = set()
    for s in statements:
        value = s["Action"]
        actions |= {value} if isinstance(value, str) else set(value)
    return actions


def test_the_bucket_is_private_encrypted_and_kept(synthesized: Synthesized) -> None:
    (logical, bucket), *others = synthesized.resources("AWS::S3::Bucket").items()
    assert not others
    props = bucket["Properties"]
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    sse = props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert sse["SSEAlgorithm"] == "AES256"
    assert bucket["DeletionPolicy"] == "Retain"
    rules = props["LifecycleConfiguration"]["Rules"]
    assert {"ExpirationInDays": 7, "Prefix": "transfers/", "Status": "Enabled"}.items() <= rules[0].items()
    assert rules[1]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
    (policy,) = [p for p in synthesized.resources("AWS::S3::BucketPolicy").values()]
    denies = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
    assert any(s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in denies)
    assert logical.startswith("FilesBucket")


def _function_of(synthesized: Synthesized, handler: str) -> tuple[str, dict[str, Any]]:
    (found,) = [(k, v) for k, v in synthesized.resources("AWS::Lambda::Function").items()
                if v["Properties"]["Handler"] == handler]  # fmt: skip
    return found


def test_the_ingest_queue_retries_then_dead_letters(synthesized: Synthesized) -> None:
    queues = synthesized.resources("AWS::SQS::Queue")
    ((main_id, main),) = [(k, q) for k, q in queues.items() if "RedrivePolicy" in q["Properties"]]
    assert main["Properties"]["RedrivePolicy"]["maxReceiveCount"] == 5
    assert main["Properties"]["VisibilityTimeout"] == 16 * 60
    assert all(q["Properties"].get("SqsManagedSseEnabled") for q in queues.values())
    dead_id = main["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
    # a dead letter whose work a run may still hold comes back once that run's lease (15.5 min) has run out
    assert queues[dead_id]["Properties"]["VisibilityTimeout"] == 16 * 60
    mappings = synthesized.resources("AWS::Lambda::EventSourceMapping").values()
    consumers = {m["Properties"]["EventSourceArn"]["Fn::GetAtt"][0]: m["Properties"] for m in mappings}
    ingest_id, _ = _function_of(synthesized, "functions.ingest.handler.handler")
    dead_letters_id, dead_letters = _function_of(synthesized, "functions.dead_letters.handler.handler")
    # each queue feeds its own function, one record an invocation, a record not finished delivered again
    assert {q: p["FunctionName"]["Ref"] for q, p in consumers.items()} == {main_id: ingest_id, dead_id: dead_letters_id}
    for props in consumers.values():
        assert props["BatchSize"] == 1 and props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    # the queue's visibility outlasts the function (Lambda requires it), and the reason it writes counts right
    assert dead_letters["Properties"]["Timeout"] <= 16 * 60
    assert dead_letters["Properties"]["Environment"]["Variables"]["O_FILES_MAX_RECEIVES"] == "5"


def test_who_may_do_what_with_files(synthesized: Synthesized) -> None:
    api = _actions(_statements(synthesized, "ApiFunction"))
    # GetObject: the presigned GET of an export and the size check of an upload session's bytes
    assert {"s3:PutObject", "s3:GetObject", "s3:DeleteObject", "sqs:SendMessage"} <= api
    assert not {a for a in api if a.startswith("s3:")} - {"s3:PutObject", "s3:GetObject", "s3:DeleteObject"}
    ingest = _actions(_statements(synthesized, "FilesIngest"))
    # reads files and uploaded bundles; writes exports (multipart past 8 MB); deletes an uploaded bundle once
    # imported and the file bytes a failed import stored
    assert {"s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload", "s3:DeleteObject"} <= ingest
    assert not {a for a in ingest if a.startswith("s3:")} - {
        "s3:GetObject",
        "s3:PutObject",
        "s3:AbortMultipartUpload",
        "s3:DeleteObject",
    }
    # SendMessage: a bundle import longer than one invocation hands itself on with a new message
    assert {"sqs:ReceiveMessage", "sqs:SendMessage"} <= ingest
    # the dead letters' function deletes a failed import's uploaded bytes and reads its own queue, no more
    dead_letters = _statements(synthesized, "FilesDeadLetterFunction")
    assert {a for a in _actions(dead_letters) if a.startswith(("s3:", "sqs:"))} == {
        "s3:DeleteObject",
        "sqs:ReceiveMessage",
        "sqs:ChangeMessageVisibility",
        "sqs:GetQueueUrl",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
    }
    on_queues = {r["Fn::GetAtt"][0] for s in dead_letters if str(s["Action"]).count("sqs:")
                 for r in ([s["Resource"]] if isinstance(s["Resource"], dict) else s["Resource"])}  # fmt: skip
    assert len(on_queues) == 1 and next(iter(on_queues)).startswith("FilesDeadLetters")
    assert not {a for a in _actions(dead_letters) if a.startswith(("secretsmanager:", "bedrock:", "lambda:"))}


def test_direct_uploads_are_capped_at_what_lambda_can_carry(synthesized: Synthesized) -> None:
    from infra.files import DIRECT_UPLOAD_BYTES

    # base64 in the event, plus the multipart envelope the route allows beside the file: under 6 MB
    assert (DIRECT_UPLOAD_BYTES + 65_536) * 4 / 3 < 6 * 1024 * 1024 - 100_000
    for function in synthesized.resources("AWS::Lambda::Function").values():
        variables = function["Properties"].get("Environment", {}).get("Variables", {})
        if "O_FILES_INGEST_QUEUE_URL" in variables:  # who takes uploads (not the dead letters' function)
            assert variables["O_FILES_MAX_UPLOAD_BYTES"] == str(DIRECT_UPLOAD_BYTES)
