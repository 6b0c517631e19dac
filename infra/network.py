"""The VPC: public subnets for the NAT, private subnets for the functions, isolated ones for the database and
the tool sandbox.

The agent loop must reach LLM providers on the internet, so the ``app`` subnets route
through a NAT gateway; calls to AWS APIs (Secrets Manager, Step Functions, Lambda, S3)
go through VPC endpoints instead, so they stay inside AWS and do not pay NAT traffic.
Only the app subnets may open a connection to an interface endpoint.

The tool sandbox runs untrusted code, so it gets a network with no way out: its own
isolated subnets (no route to a NAT, an internet gateway or a gateway endpoint), a
network ACL with no rule (which denies every packet both ways) and a security group
with no egress rule that matches anything. Nothing admits it either: no endpoint, no
database, no other function.
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
HTTPS = ec2.Port.tcp(443)
# Subnet groups, in the order their address ranges are allocated: a new group goes at the end, so the
# ranges of a deployed stack's subnets never move.
PUBLIC, APP, DATA, SANDBOX = "public", "app", "data", "sandbox"


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
                ec2.SubnetConfiguration(name=PUBLIC, subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24),
                ec2.SubnetConfiguration(name=APP, subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS, cidr_mask=22),
                ec2.SubnetConfiguration(name=DATA, subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=24),
                ec2.SubnetConfiguration(name=SANDBOX, subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=24),
            ],
        )
        flow_logs = logs.LogGroup(self, "FlowLogs", retention=log_retention, removal_policy=RemovalPolicy.DESTROY)
        # Rejected traffic is what an investigation needs; accepted traffic would cost the most.
        self.vpc.add_flow_log(
            "Rejected",
            destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_logs),
            traffic_type=ec2.FlowLogTrafficType.REJECT,
        )
        self.app_subnets = ec2.SubnetSelection(subnet_group_name=APP)
        self.data_subnets = ec2.SubnetSelection(subnet_group_name=DATA)
        self.sandbox_subnets = ec2.SubnetSelection(subnet_group_name=SANDBOX)
        self.function_security_group = ec2.SecurityGroup(
            self,
            "Functions",
            vpc=self.vpc,
            description="O Lambda functions in the VPC (API, agent step, sleep-time, evolution, migrations)",
            # LLM providers may listen on any port (a self-hosted Ollama, say), so egress stays open here;
            # the sandbox, which runs untrusted code, has its own group with none.
            allow_all_outbound=True,
        )
        self._add_endpoints(interface_endpoints)
        self._isolate_sandbox()

    def _add_endpoints(self, interface_endpoints: bool) -> None:
        # S3: the migration custom resource answers CloudFormation on a pre-signed S3 URL.
        self.vpc.add_gateway_endpoint("S3", service=ec2.GatewayVpcEndpointAwsService.S3, subnets=[self.app_subnets])
        if not interface_endpoints:
            return
        self.endpoint_security_group = ec2.SecurityGroup(
            self,
            "Endpoints",
            vpc=self.vpc,
            description="O VPC interface endpoints: HTTPS from the app subnets only",
            allow_all_outbound=False,
        )
        # The app subnets hold every client of the endpoints: O's functions and the database secret's
        # rotation function (which has a security group of its own). Not the data or sandbox subnets.
        for subnet in self.vpc.select_subnets(subnet_group_name=APP).subnets:
            self.endpoint_security_group.add_ingress_rule(
                ec2.Peer.ipv4(subnet.ipv4_cidr_block), HTTPS, f"AWS APIs from app subnet {subnet.ipv4_cidr_block}"
            )
        for name, service in INTERFACE_ENDPOINTS.items():
            self.vpc.add_interface_endpoint(
                name,
                service=service,
                subnets=self.app_subnets,
                private_dns_enabled=True,
                # Not CDK's default rule (443 from the whole VPC CIDR), which would admit the sandbox subnets.
                open=False,
                security_groups=[self.endpoint_security_group],
            )

    def _isolate_sandbox(self) -> None:
        self.sandbox_security_group = ec2.SecurityGroup(
            self,
            "Sandbox",
            vpc=self.vpc,
            description="O tool sandbox: no egress, no ingress",
            # CloudFormation gives a group without egress rules an allow-all rule; with this off, CDK writes
            # instead one rule that matches no packet (ICMP type 252 code 86 to 255.255.255.255/32).
            allow_all_outbound=False,
            allow_all_ipv6_outbound=False,
        )
        # A network ACL with no entries denies all traffic in and out of the sandbox subnets: were an egress
        # rule ever added to the group above, packets would still stop at the subnet boundary.
        acl = ec2.NetworkAcl(self, "SandboxAcl", vpc=self.vpc, subnet_selection=self.sandbox_subnets)
        acknowledge(
            acl,
            ("AwsSolutions-VPC3", "the one network ACL has no entries on purpose: it drops every packet to and "
             "from the tool sandbox's subnets, under its security group with no egress"),
        )  # fmt: skip

    @property
    def functions(self) -> FunctionNetwork:
        """Where the functions that talk to the database are placed."""
        return FunctionNetwork(vpc=self.vpc, subnets=self.app_subnets, security_group=self.function_security_group)

    @property
    def sandbox(self) -> FunctionNetwork:
        """Where the tool sandbox is placed: isolated subnets, a security group with no way out."""
        return FunctionNetwork(vpc=self.vpc, subnets=self.sandbox_subnets, security_group=self.sandbox_security_group)
