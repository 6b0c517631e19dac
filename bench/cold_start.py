"""Lambda cold start and memory: the handlers imported as Lambda imports them, in fresh processes.

Prints the CPU time of importing the API handler and the agent-step handler against the import of
their unavoidable libraries (fastapi, pydantic, psycopg, boto3, mangum), measured in the same run,
interleaved, median of ``--rounds``, and of the API handler's import with its first request (a GET of an
agent: the API Lambda imports the routers a request needs on that request, :mod:`o.api.routers`);
then the API handler's max memory (max RSS) while it serves a mix
of requests in-process, the local embedding model included.

"As Lambda does" means: the runtime's Python (3.12: ``O_LAMBDA_PYTHON``, ``python3.12`` or pyenv's),
the dependency layer as ``infra.build`` builds it, for this machine's architecture (the same packages
as the arm64 layer Lambda gets; x86_64 wheels are larger, so no size budget here), the code asset as
``infra.build`` builds it, boto3 as the runtime provides it (compiled, after the layer on sys.path),
the environment the stack gives the functions (so the AWS adapters are the ones chosen; the database is
an embedded Postgres by URL, not RDS by IAM token), and no bytecode written (Lambda's file system is
read-only). Two cases:

- ``shipped``: with the bytecode the build ships (the whole code asset, the layer's cold-start modules);
- ``no .pyc``: as the asset shipped before, every module of the layer and the code compiled at import
  (a ``pycache_prefix`` that holds only the standard library's and the runtime's bytecode).

    python bench/cold_start.py [--rounds 7] [--write-modules]

``--write-modules`` rewrites ``layers/cold-start-modules.txt`` (the layer modules the two handlers
import at cold start, and the API's routers and whatever else its first request imports, which
``infra.build`` compiles) from this run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from infra import build  # noqa: E402

LIBS = "fastapi, pydantic, psycopg, boto3, mangum"
# what is timed in a fresh process: the import, and for the API the import and its first request (the
# routers a request needs are imported on that request)
TARGETS = {
    "libraries": f"import {LIBS}",
    "API handler": "import functions.api.handler",
    "API + 1st GET agent": "import functions.api.handler as api\ncall('GET', f'/v1/agents/{agent_id}')",
    "agent-step handler": "import functions.agent_step.handler",
}
ACCOUNT = "123456789012"
REGION = "us-east-1"
TRACE_ID = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"

# an API Gateway proxy event to the API handler, as Lambda passes it (argv: an API key, an agent's id)
REQUEST = """
import json, sys, uuid
from dataclasses import dataclass

@dataclass
class Context:
    function_name: str = "o-api"
    function_version: str = "$LATEST"
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:o-api"
    memory_limit_in_mb: int = 1024
    aws_request_id: str = "bench"
    log_group_name: str = "/aws/lambda/o-api"
    def get_remaining_time_in_millis(self) -> int:
        return 29_000

key, agent_id = sys.argv[1:3]
def call(method, path, body=None):
    headers = {"content-type": "application/json", "host": "api.example.com", "authorization": f"Bearer {key}"}
    path, _, query = path.partition("?")
    params = dict(p.split("=", 1) for p in query.split("&")) if query else None
    event = {"resource": "/{proxy+}", "path": path, "httpMethod": method, "headers": headers,
             "multiValueHeaders": {k: [v] for k, v in headers.items()}, "queryStringParameters": params,
             "multiValueQueryStringParameters": {k: [v] for k, v in params.items()} if params else None,
             "pathParameters": {"proxy": path.lstrip("/")},
             "requestContext": {"resourcePath": "/{proxy+}", "httpMethod": method, "path": "/live" + path,
                                "stage": "live", "requestId": str(uuid.uuid4()),
                                "identity": {"sourceIp": "203.0.113.1"}},
             "body": json.dumps(body) if body is not None else None, "isBase64Encoded": False}
    import functions.api.handler as api
    response = api.handler(event, Context())
    assert response["statusCode"] < 300, (method, path, response["statusCode"], response["body"][:300])
    return json.loads(response["body"]) if response["body"] else None
"""

TIMED = """
import json, resource, time
cpu, wall = time.process_time(), time.perf_counter()
{code}
print(json.dumps({{"cpu_ms": (time.process_time() - cpu) * 1000, "wall_ms": (time.perf_counter() - wall) * 1000,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""

# the routers too: the API Lambda imports the one a request needs on that request (o.api.routers); and what
# serving its first request imports (anyio's asyncio backend, which runs the sync routes on threads: ≈ 45 ms of
# CPU compiling it at every cold start when its bytecode is not shipped)
MODULES = """
import importlib
import functions.agent_step.handler
from o.api.routers import MODULES as ROUTERS
for name in ROUTERS:
    importlib.import_module(f"o.api.routers.{name}")
call("GET", f"/v1/agents/{agent_id}")
site = sys.argv[3].rstrip("/") + "/"
print(json.dumps(sorted({m.__file__[len(site):] for m in list(sys.modules.values())
                         if (getattr(m, "__file__", None) or "").startswith(site) and m.__file__.endswith(".py")})))
"""


def lambda_like(layer: Path, code: Path, runtime_dir: Path, db_url: str) -> dict[str, str]:
    """The deployed functions' environment (infra/stack.py), with the AWS adapters chosen, and the
    paths Lambda puts on sys.path: the code, the layer, then the runtime's boto3. Every process runs in
    ``LAMBDA_TASK_ROOT``, as on Lambda: ``python -c`` puts its working directory first on sys.path, so
    run from the repository it would import the working tree (and its bytecode), not the code asset."""
    from o.config import env_name

    arn = f"arn:aws:{{}}:{REGION}:{ACCOUNT}:{{}}"
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "PYTHONPATH": os.pathsep.join(str(p) for p in (code, layer / "python", runtime_dir)),
        "PYTHONDONTWRITEBYTECODE": "1",
        "LAMBDA_TASK_ROOT": str(code),
        "AWS_LAMBDA_FUNCTION_NAME": "o-bench",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "_X_AMZN_TRACE_ID": TRACE_ID,
        env_name(None, "runtime"): "lambda",
        env_name(None, "database_url"): db_url,
        env_name(None, "disable_prepared_statements"): "true",
        env_name(None, "run_migrations"): "false",
        env_name("secrets", "kms_key_id"): arn.format("kms", "key/bench"),
        env_name("llm", "keys_secret_arn"): arn.format("secretsmanager", "secret:o-llm-keys"),
        env_name("llm", "bedrock_region"): REGION,
        env_name("sandbox", "function_name"): arn.format("lambda", "function:o-sandbox"),
        env_name("files", "bucket"): "o-files-bench",
        env_name("files", "ingest_queue_url"): f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/o-ingest",
        env_name("agent", "state_machine_arn"): arn.format("states", "stateMachine:o-loop"),
        env_name("evolution", "step_function_name"): "o-agent-step",
        env_name("evolution", "step_alias"): "live",
        env_name("evolution", "state_machine_arn"): arn.format("states", "stateMachine:o-evolution"),
        env_name("evolution", "event_bus"): "o-events",
        env_name("embedding", "model_path"): str(layer / "models" / "model.onnx"),
        env_name("embedding", "tokenizer_path"): str(layer / "models" / "tokenizer.json"),
    }


def runtime_boto3(python: str, folder: Path) -> Path:
    """boto3 as the Lambda runtime provides it (in /var/runtime, with its bytecode)."""
    if not (folder / ".complete").is_file():
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-warn-conflicts",
             "--only-binary=:all:", "--python-version", build.PYTHON_VERSION, "--target", str(folder), "boto3"],
            check=True,
        )  # fmt: skip
        subprocess.run([python, "-m", "compileall", "-q", "-j0", str(folder)], check=True, stdout=subprocess.DEVNULL)
        (folder / ".complete").write_text("")
    return folder


def stdlib_only_prefix(python: str, folder: Path, runtime_dir: Path) -> Path:
    """A pycache_prefix holding the bytecode of the standard library and the runtime's boto3 only: with
    it, every module of the layer and the code is compiled at import, as when the asset shipped none."""
    if not (folder / ".complete").is_file():
        folder.mkdir(parents=True, exist_ok=True)
        stdlib = subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['stdlib'])"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        subprocess.run(
            [python, "-X", f"pycache_prefix={folder}", "-m", "compileall", "-q", stdlib, str(runtime_dir)],
            check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        (folder / ".complete").write_text("")
    return folder


def run(python: str, env: dict[str, str], code: str, prefix: Path | None, seeded: Seeded) -> dict[str, float]:
    flags = ["-X", f"pycache_prefix={prefix}"] if prefix else []
    out = subprocess.run(
        [python, "-s", *flags, "-c", REQUEST + TIMED.format(code=code), *seeded],
        env=env, cwd=env["LAMBDA_TASK_ROOT"], capture_output=True, text=True,
    )  # fmt: skip
    if out.returncode != 0:
        raise RuntimeError(f"{code} failed:\n{out.stderr[-3000:]}")
    figures: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return figures


def cold_imports(python: str, env: dict[str, str], prefix: Path, rounds: int, seeded: Seeded) -> None:
    cases = {"shipped": None, "no .pyc": prefix}
    samples: dict[tuple[str, str], list[dict[str, float]]] = {}
    for _ in range(rounds):
        for case, case_prefix in cases.items():
            for label, code in TARGETS.items():
                samples.setdefault((case, label), []).append(run(python, env, code, case_prefix, seeded))
    print(f"import in a fresh process, CPU time (median of {rounds}, interleaved); ratio to the libraries' import:")
    for case in cases:
        libs = statistics.median(s["cpu_ms"] for s in samples[(case, "libraries")])
        for label in TARGETS:
            rows = samples[(case, label)]
            cpu = statistics.median(s["cpu_ms"] for s in rows)
            wall = statistics.median(s["wall_ms"] for s in rows)
            rss = statistics.median(s["rss_mb"] for s in rows)
            print(
                f"  {case:<9} {label:<19} CPU {cpu:7.0f} ms ({min(s['cpu_ms'] for s in rows):5.0f}-"
                f"{max(s['cpu_ms'] for s in rows):5.0f})  wall {wall:6.0f} ms  max RSS {rss:4.0f} MB"
                + (f"   {cpu / libs:4.2f} x the libraries" if label != "libraries" else f"   ({LIBS})")
            )


def write_modules(python: str, env: dict[str, str], layer: Path, seeded: Seeded) -> None:
    out = subprocess.run(
        [python, "-s", "-c", REQUEST + MODULES, *seeded, str(layer / "python")],
        env=env, cwd=env["LAMBDA_TASK_ROOT"], capture_output=True, text=True, check=True,
    )  # fmt: skip
    modules = json.loads(out.stdout.strip().splitlines()[-1])
    target = build.LAYERS / "cold-start-modules.txt"
    header = (
        "# The layer's modules the API and agent-step handlers import at cold start, relative to its python/\n"
        "# folder: infra.build ships their bytecode. Written by `python bench/cold_start.py --write-modules`;\n"
        "# a module missing here is only compiled at import, as every module was before.\n"
    )
    target.write_text(header + "".join(f"{m}\n" for m in modules))
    print(f"wrote {len(modules)} modules to {target.relative_to(ROOT)}")


MEMORY = """
import resource

def rss():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

steps = [("after the cold start", rss())]
blocks = [{"label": "human", "value": "Name: Ada"}, {"label": "persona", "value": "A careful assistant."}]
agent = call("POST", "/v1/agents/", {"name": "bench", "memory_blocks": blocks})
steps.append(("the first request (an agent created)", rss()))
for _ in range(20):
    call("GET", f"/v1/agents/{agent['id']}")
    call("PATCH", f"/v1/agents/{agent['id']}/core-memory/blocks/human", {"value": "Name: Ada L."})
    call("GET", f"/v1/agents/{agent['id']}/messages?limit=50")
    call("GET", "/v1/agents/?limit=50")
steps.append(("agents, blocks, messages (80 requests)", rss()))
for i in range(20):
    fact = {"text": f"Ada plays chess on day {i} of the tournament."}
    call("POST", f"/v1/agents/{agent['id']}/archival-memory", fact)
    call("GET", f"/v1/agents/{agent['id']}/archival-memory/search?query=chess")
steps.append(("archival insert + search, local ONNX embedder (40 requests)", rss()))
print(json.dumps(steps))
"""


Seeded = tuple[str, str]  # an API key, an agent of its organization

SEED = """
blocks = [{"label": "human", "value": "Name: Ada"}, {"label": "persona", "value": "A careful assistant."}]
print(call("POST", "/v1/agents/", {"name": "cold", "memory_blocks": blocks})["id"])
"""


def seed(python: str, env: dict[str, str], db_url: str) -> Seeded:
    """An API key, and an agent the first request of a cold start reads (made through the handler)."""
    from o.store import orgs
    from o.store.db import Database

    db = Database(db_url, max_size=1).open()
    with db.transaction() as conn:
        org = orgs.get_or_create_org(conn, f"bench-{time.time_ns()}")
        _, key = orgs.create_api_key(conn, org["id"])
    db.close()
    out = subprocess.run(
        [python, "-s", "-c", REQUEST + SEED, key, ""],
        env=env,
        cwd=env["LAMBDA_TASK_ROOT"],
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise RuntimeError(f"creating an agent through the API handler failed:\n{out.stderr[-3000:]}")
    return key, out.stdout.strip().splitlines()[-1]


def lambda_memory(python: str, env: dict[str, str], seeded: Seeded) -> None:
    out = subprocess.run(
        [python, "-s", "-c", REQUEST + MEMORY, *seeded],
        env=env,
        cwd=env["LAMBDA_TASK_ROOT"],
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise RuntimeError(f"the in-process API handler failed:\n{out.stderr[-3000:]}")
    print("API handler in-process (as on Lambda, one request at a time), max RSS of the process:")
    for label, mb in json.loads(out.stdout.strip().splitlines()[-1]):
        print(f"  {label:<60} {mb:5.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--write-modules", action="store_true", help="rewrite layers/cold-start-modules.txt")
    args = parser.parse_args()

    python = build.lambda_python()
    if python is None:
        sys.exit(f"needs a Python {build.PYTHON_VERSION} (the Lambda runtime's): set O_LAMBDA_PYTHON")
    arch = platform.machine()
    print(f"machine: {os.cpu_count()} cores ({arch}), load average {os.getloadavg()[0]:.2f}; Python {python}")
    started = time.monotonic()
    layer = build.build_layer(arch=arch, check_size=False)
    runtime_dir = runtime_boto3(python, build.LAYER_CACHE / f"runtime-boto3-{arch}")
    prefix = stdlib_only_prefix(python, build.LAYER_CACHE / f"stdlib-pycache-{arch}", runtime_dir)
    print(f"layer {layer.name} ({arch}), runtime boto3, stdlib bytecode ready in {time.monotonic() - started:.0f} s")

    from o.store.embedded import EmbeddedPostgres
    from o.store.migrate import migrate

    with tempfile.TemporaryDirectory(prefix="o-cold-") as tmp:
        code = build.build_code(Path(tmp) / "code")
        pg = EmbeddedPostgres(Path(tmp) / "pg", cleanup_mode="delete")
        try:
            migrate(pg.url)
            env = lambda_like(layer, code, runtime_dir, pg.url)
            seeded = seed(python, env, pg.url)
            if args.write_modules:
                write_modules(python, env, layer, seeded)
                # the layer's bytecode follows the list: build (or find) the layer it makes
                layer = build.build_layer(arch=arch, check_size=False)
                env = lambda_like(layer, code, runtime_dir, pg.url)
            cold_imports(python, env, prefix, args.rounds, seeded)
            lambda_memory(python, env, seeded)
        finally:
            pg.stop()
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
