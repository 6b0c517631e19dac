"""What the deployed stack costs: idle $/month and $ per 1,000 messages, for both profiles.

Synthesizes the real stack (``standard``, ``economy``, and economy with ``o:economyEgress=natInstance``;
the CDK app the tests synthesize, no AWS account needed), counts in each template what is billed by the
hour (NAT gateways and instances, public IPv4 addresses, interface endpoints per AZ, the RDS instance and
its storage, RDS Proxy, Aurora Serverless v2's minimum capacity, secrets including RDS-managed ones, KMS
keys, alarms, dashboards; an egress-only internet gateway is listed at its price, zero) and prices it with the
checked-in table ``bench/prices_us_east_1.json`` (us-east-1 list prices, dated, with their source).
The per-message figure adds what one message uses (``Usage``; stated assumptions, printed) to
pay-per-request services and, in economy, the database's active time.

    python bench/cost.py
"""

from __future__ import annotations

import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.infra.synth import synth_template  # noqa: E402

PRICES = json.loads((ROOT / "bench" / "prices_us_east_1.json").read_text())
# What is priced: the two profiles, and economy with its NAT instance for IPv4-only providers.
DEPLOYMENTS: dict[str, dict[str, str]] = {
    "standard": {"o:profile": "standard"},
    "economy": {"o:profile": "economy"},
    "economy (natInstance)": {"o:profile": "economy", "o:economyEgress": "natInstance"},
}


@dataclass(frozen=True)
class Usage:
    """What one message (one user turn: a send, the agent loop's steps, the reply) uses. Assumptions."""

    api_requests: int = 1
    # the API function waits for the loop's answer (sync send), the agent step runs each LLM call
    api_seconds: float = 6.0
    steps: int = 2
    step_seconds: float = 3.0
    memory_gb: float = 1.0
    state_transitions: int = 10
    log_kb: float = 20.0
    egress_kb: float = 60.0  # prompt + completion to and from the LLM provider
    secret_reads: float = 0.1  # cached LLM keys: a read every few messages
    kms_requests: float = 0.5
    # economy: the database is awake while a message runs; a conversation of this many messages wakes
    # it once and keeps it up for the auto-pause delay after the last one, at its minimum running size
    active_seconds: float = 10.0
    active_acu: float = 1.0
    messages_per_wake: int = 20
    pause_after_minutes: float = 5.0
    idle_acu: float = 0.5
    aurora_io_per_message: int = 200
    # standard: the idle instance absorbs the load; economy: fresh data in storage is priced in the idle line
    storage_gb: float = 1.0


def _count(resources: dict[str, Any], kind: str) -> int:
    return sum(1 for r in resources.values() if r["Type"] == kind)


def idle(template: dict[str, Any], usage: Usage) -> dict[str, float]:
    """$/month of what the template bills by the hour, item by item."""
    p, hours = PRICES, PRICES["hours_per_month"]
    res = template["Resources"]
    items: dict[str, float] = {}
    nat = _count(res, "AWS::EC2::NatGateway")
    if nat:
        items[f"NAT gateway x{nat}"] = nat * p["nat_gateway_hour"] * hours
    instances = [r["Properties"] for r in res.values() if r["Type"] == "AWS::EC2::Instance"]
    for props in instances:
        kind = props["InstanceType"]
        items[f"NAT instance {kind} + 8 GiB gp3"] = p["ec2_instance_hour"][kind] * hours + 8 * p["ebs_gp3_gb_month"]
    # every NAT gateway has an Elastic IP; a NAT instance in a public subnet gets a public address
    public_ips = _count(res, "AWS::EC2::EIP") + len(instances)
    if public_ips:
        items[f"public IPv4 x{public_ips}"] = public_ips * p["public_ipv4_hour"] * hours
    endpoint_azs = sum(
        len(r["Properties"].get("SubnetIds", []))
        for r in res.values()
        if r["Type"] == "AWS::EC2::VPCEndpoint" and r["Properties"].get("VpcEndpointType") == "Interface"
    )
    if endpoint_azs:
        items[f"interface endpoints ({endpoint_azs} endpoint-AZs)"] = (
            endpoint_azs * p["interface_endpoint_hour_per_az"] * hours
        )
    items.update(_database(res, usage))
    eigw = _count(res, "AWS::EC2::EgressOnlyInternetGateway")
    if eigw:
        # no hourly or per-GB charge of its own; what leaves is priced as internet egress per message
        items[f"egress-only internet gateway x{eigw} (IPv6)"] = 0.0
    # CDK's secrets, and the one RDS keeps for a database whose owner password it manages (billed the same)
    managed = sum(
        1
        for r in res.values()
        if r["Type"] in ("AWS::RDS::DBCluster", "AWS::RDS::DBInstance")
        and r["Properties"].get("ManageMasterUserPassword")
    )
    secrets = _count(res, "AWS::SecretsManager::Secret") + managed
    label = f"Secrets Manager x{secrets}" + (f" ({managed} RDS-managed)" if managed else "")
    items[label] = secrets * p["secret_month"]
    keys = _count(res, "AWS::KMS::Key")
    rotating = sum(1 for r in res.values() if r["Type"] == "AWS::KMS::Key" and r["Properties"].get("EnableKeyRotation"))
    # KMS bills each of a key's first two rotations as one more key-month: +$1 a year after deploy, +$2 after two
    later = f" (+${p['kms_key_month']:g} after each of the first 2 yearly rotations)" if rotating else ""
    items[f"KMS key x{keys}{later}"] = keys * p["kms_key_month"]
    alarms = _count(res, "AWS::CloudWatch::Alarm")
    items[f"CloudWatch alarms x{alarms}"] = alarms * p["alarm_month"]
    dashboards = _count(res, "AWS::CloudWatch::Dashboard")
    items[f"dashboard x{dashboards}"] = dashboards * p["dashboard_month"]
    return items


def _database(res: dict[str, Any], usage: Usage) -> dict[str, float]:
    p, hours = PRICES, PRICES["hours_per_month"]
    items: dict[str, float] = {}
    clusters = [r["Properties"] for r in res.values() if r["Type"] == "AWS::RDS::DBCluster"]
    for cluster in clusters:
        minimum = float(cluster["ServerlessV2ScalingConfiguration"]["MinCapacity"])
        items[f"Aurora Serverless v2 at {minimum:g} ACU idle"] = minimum * p["aurora_acu_hour"] * hours
        items[f"Aurora storage ({usage.storage_gb:g} GB)"] = usage.storage_gb * p["aurora_storage_gb_month"]
    if clusters:
        return items
    for props in (r["Properties"] for r in res.values() if r["Type"] == "AWS::RDS::DBInstance"):
        kind = props["DBInstanceClass"]
        copies = 2 if props.get("MultiAZ") else 1
        items[f"RDS {kind}{' multi-AZ' if copies == 2 else ''}"] = copies * p["rds_instance_hour"][kind] * hours
        storage = float(props.get("AllocatedStorage", 20))
        items[f"RDS gp3 {storage:g} GiB"] = copies * storage * p["rds_gp3_gb_month"]
        if _count(res, "AWS::RDS::DBProxy"):
            vcpus = max(p["rds_proxy_min_vcpus"], p["rds_instance_vcpus"][kind])
            items["RDS Proxy"] = vcpus * p["rds_proxy_vcpu_hour"] * hours
    return items


def per_thousand(template: dict[str, Any], usage: Usage) -> dict[str, float]:
    """$ per 1,000 messages on top of the idle cost."""
    p, n = PRICES, 1000
    res = template["Resources"]
    gb_seconds = n * usage.memory_gb * (usage.api_seconds + usage.steps * usage.step_seconds)
    invocations = n * (1 + usage.steps)
    items = {
        "Lambda (arm64)": gb_seconds * p["lambda_arm_gb_second"] + invocations / 1e6 * p["lambda_requests_million"],
        "API Gateway (REST)": n * usage.api_requests / 1e6 * p["api_gateway_rest_million"],
        "Step Functions (Standard)": n * usage.state_transitions / 1000 * p["step_functions_standard_1k_transitions"],
        "CloudWatch Logs": n * usage.log_kb / 1e6 * p["cloudwatch_logs_ingest_gb"],
        "Secrets Manager + KMS calls": n
        * (usage.secret_reads * p["secrets_api_10k"] + usage.kms_requests * p["kms_requests_10k"])
        / 1e4,
        "internet egress": n * usage.egress_kb / 1e6 * p["internet_egress_gb"],
    }
    if _count(res, "AWS::EC2::NatGateway"):
        items["NAT gateway data"] = n * usage.egress_kb / 1e6 * p["nat_gateway_gb"]
    if _count(res, "AWS::RDS::DBCluster"):
        active = n * usage.active_seconds / 3600 * usage.active_acu
        wakes = n / usage.messages_per_wake
        tail = wakes * usage.pause_after_minutes / 60 * usage.idle_acu
        items["Aurora ACU (active + pause delay)"] = (active + tail) * p["aurora_acu_hour"]
        items["Aurora I/O"] = n * usage.aurora_io_per_message / 1e6 * p["aurora_io_million"]
    return items


def report(name: str, template: dict[str, Any], usage: Usage) -> tuple[float, float]:
    fixed = idle(template, usage)
    variable = per_thousand(template, usage)
    print(f"\n== {name} ==")
    for item, cost in fixed.items():
        print(f"  {item:<48} {cost:8.2f} $/month")
    idle_total = sum(fixed.values())
    print(f"  {'idle total':<48} {idle_total:8.2f} $/month")
    for item, cost in variable.items():
        print(f"  {item:<48} {cost:8.3f} $/1k messages")
    message_total = sum(variable.values())
    print(f"  {'per 1,000 messages':<48} {message_total:8.3f} $ (LLM tokens not included)")
    return idle_total, message_total


def main() -> None:
    usage = Usage()
    print(f"prices: {PRICES['region']}, taken {PRICES['taken']} — {PRICES['source']}")
    print(f"usage per message (assumed): {usage}")
    totals = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, context in DEPLOYMENTS.items():
            template = synth_template(Path(tmp) / name.replace(" ", "-"), **context)
            totals[name] = report(name, template, usage)
    print("\ndeployment                   idle $/month   $ per 1,000 messages")
    for name, (fixed, variable) in totals.items():
        print(f"{name:<28} {fixed:12.2f}   {variable:10.3f}")
    print("\nNo free tier is applied (an account's first 10 alarms and 3 dashboards are free, shared with")
    print("everything else in it). Aurora backup storage up to the database's size is included in its price.")


if __name__ == "__main__":
    main()
