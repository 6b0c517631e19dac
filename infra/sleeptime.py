"""Sleep-time compute: the sleep-time function and the EventBridge Scheduler schedules that start it.

The stack owns one schedule group and one default schedule that wakes the sleep-time
function on a fixed rate; the function decides which agents are due (N new user messages,
or the interval elapsed with anything new). The scheduler role may invoke this function
and nothing else. This is the AWS side of the sleep-time scheduler port: `o serve` runs
the same sweep on a thread (``o.evolution.sleeptime.start_local_scheduler``).
"""

from __future__ import annotations

import json

from aws_cdk import Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_scheduler as scheduler
from constructs import Construct

from infra.service_function import (
    FunctionAssets,
    FunctionNetwork,
    ServiceFunction,
    grant_invoke_exact,
)

HANDLER = "functions.sleeptime.handler.handler"
# What the default schedule sends; the sleep-time handler picks the agents that are due.
DEFAULT_INPUT = {"kind": "sleeptime", "scope": "due-agents"}


class Sleeptime(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        assets: FunctionAssets,
        network: FunctionNetwork,
        environment: dict[str, str],
        schedule_expression: str | None,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.service = ServiceFunction(
            self,
            "Worker",
            assets=assets,
            handler=HANDLER,
            description="O sleep-time compute: memory reorganization and self-evolution, off the request path",
            service="o-sleeptime",
            memory_mb=1024,
            timeout=Duration.minutes(15),
            environment=environment,
            network=network,
        )
        self.function = self.service.function
        self.group_name = f"{stack.stack_name}-sleeptime"
        self.group = scheduler.CfnScheduleGroup(self, "Group", name=self.group_name)
        self.role = iam.Role(
            self,
            "SchedulerRole",
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com",
                conditions={"StringEquals": {"aws:SourceAccount": stack.account}},
            ),
            description="EventBridge Scheduler: invoke O's sleep-time function",
        )
        grant_invoke_exact(self.function, self.role)
        self.default_schedule: scheduler.CfnSchedule | None = None
        if schedule_expression is None:
            # No periodic sweep (o:sleeptimeSchedule=none, the economy default): a sweep reads the database,
            # which would wake a paused one. Passes still follow runs (every N user messages).
            return
        self.default_schedule = scheduler.CfnSchedule(
            self,
            "DefaultSchedule",
            group_name=self.group_name,
            description="wake sleep-time compute for the agents that are due",
            schedule_expression=schedule_expression,
            flexible_time_window=scheduler.CfnSchedule.FlexibleTimeWindowProperty(
                mode="FLEXIBLE", maximum_window_in_minutes=15
            ),
            target=scheduler.CfnSchedule.TargetProperty(
                arn=self.function.function_arn,
                role_arn=self.role.role_arn,
                input=json.dumps(DEFAULT_INPUT),
                retry_policy=scheduler.CfnSchedule.RetryPolicyProperty(
                    maximum_retry_attempts=2, maximum_event_age_in_seconds=3600
                ),
            ),
            state="ENABLED",
        )
        self.default_schedule.add_resource_dependency(self.group)
