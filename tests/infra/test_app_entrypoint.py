"""``app.py`` as the CDK CLI runs it: context from CDK_CONTEXT_JSON, output to CDK_OUTDIR."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.infra.synth import ROOT, synth_context


def test_app_py_synthesizes_a_non_default_configuration(tmp_path: Path, stub_layer: Path) -> None:
    context = synth_context(**{
        "o:layerDir": str(stub_layer),
        "o:stackName": "OProd",
        "o:interfaceEndpoints": "false",
        "o:dbMultiAz": "true",
        "o:sleeptimeSchedule": "rate(30 minutes)",
        "o:dbDeletionProtection": "true",
        "o:dbRemovalPolicy": "retain",
        "o:sandboxConcurrency": "none",
    })  # fmt: skip
    env = {
        **os.environ,
        "CDK_CONTEXT_JSON": json.dumps(context),
        "CDK_OUTDIR": str(tmp_path),
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    }
    done = subprocess.run([sys.executable, "app.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((tmp_path / "validation-report.json").read_text())
    assert all(r["conclusion"] == "success" for r in report["pluginReports"])

    resources = json.loads((tmp_path / "OProd.template.json").read_text())["Resources"]
    endpoints = [r for r in resources.values() if r["Type"] == "AWS::EC2::VPCEndpoint"]
    assert [e["Properties"].get("VpcEndpointType", "Gateway") for e in endpoints] == ["Gateway"]
    (db,) = [r for r in resources.values() if r["Type"] == "AWS::RDS::DBInstance"]
    assert db["Properties"]["MultiAZ"] is True
    assert db["Properties"]["DeletionProtection"] is True
    # kept on delete and replacement, but not when the create that made it fails (so a retry starts clean)
    assert (db["DeletionPolicy"], db["UpdateReplacePolicy"]) == ("RetainExceptOnCreate", "Retain")
    secrets = [r for k, r in resources.items() if r["Type"] == "AWS::SecretsManager::Secret" and "Database" in k]
    assert [s["DeletionPolicy"] for s in secrets] == ["RetainExceptOnCreate"], "a kept database keeps its password"
    (sandbox,) = [r for r in resources.values() if r["Type"] == "AWS::Lambda::Function"
                  and r["Properties"]["Handler"] == "functions.tool_sandbox.handler.handler"]  # fmt: skip
    assert "ReservedConcurrentExecutions" not in sandbox["Properties"]
    assert db["Properties"]["DBInstanceIdentifier"] == "oprod-postgres"
    (schedule,) = [r for r in resources.values() if r["Type"] == "AWS::Scheduler::Schedule"]
    assert schedule["Properties"]["ScheduleExpression"] == "rate(30 minutes)"
    names = {r["Properties"].get("StateMachineName") for r in resources.values()
             if r["Type"] == "AWS::StepFunctions::StateMachine"}  # fmt: skip
    assert names == {"OProd-agent-loop", "OProd-evolution"}
