"""The VPC: public subnets for the NAT, private subnets for the functions, isolated ones for the database.

The agent loop must reach LLM providers on the internet, so the private subnets route
through a NAT gateway; calls to AWS APIs (Secrets Manager, Step Functions, Lambda, S3)
go through VPC endpoints instead, so they stay inside AWS and do not pay NAT traffic.
"""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.service_function import FunctionNetwork, acknowledge

INTERFACE_ENDPOINTS = {
    "SecretsManager": ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
    "StepFunctions": ec2.InterfaceVpcEndpointAwsService.STEP_FUNCTIONS,
    "Lambda": ec2.InterfaceVpcEndpointAwsService.LAMBDA_,
}


class Network(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        max_azs: int,
        nat_gateways: int,
        interface_endpoints: bool,
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, construct_id)
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            max_azs=max_azs,
            nat_gateways=nat_gateways,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24),
                ec2.SubnetConfiguration(name="app", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS, cidr_mask=22),
                ec2.SubnetConfiguration(name="data", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=24),
            ],
        )
        flow_logs = logs.LogGroup(self, "FlowLogs", retention=log_retention, removal_policy=RemovalPolicy.DESTROY)
        # Rejected traffic is what an investigation needs; accepted traffic would cost the most.
        self.vpc.add_flow_log(
            "Rejected",
            destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_logs),
            traffic_type=ec2.FlowLogTrafficType.REJECT,
        )
        self.app_subnets = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)
        self.data_subnets = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)
        self.vpc.add_gateway_endpoint("S3", service=ec2.GatewayVpcEndpointAwsService.S3)
        if interface_endpoints:
            for name, service in INTERFACE_ENDPOINTS.items():
                self.vpc.add_interface_endpoint(
                    name, service=service, subnets=self.app_subnets, private_dns_enabled=True
                )
        acknowledge(
            self.vpc,
            ("AwsSolutions-EC23", "the endpoint security groups admit 443 from the VPC's own CIDR only; the "
             "rule cannot read that CIDR at synth time because it is a CloudFormation reference"),
        )  # fmt: skip
        self.function_security_group = ec2.SecurityGroup(
            self,
            "Functions",
            vpc=self.vpc,
            description="O Lambda functions in the VPC (API, agent step, sleep-time, migrations)",
            allow_all_outbound=True,
        )

    @property
    def functions(self) -> FunctionNetwork:
        """Where the functions that talk to the database are placed."""
        return FunctionNetwork(vpc=self.vpc, subnets=self.app_subnets, security_group=self.function_security_group)
