"""The VPC: public subnets for the NAT, private subnets for the functions, isolated ones for the database and
the tool sandbox.

The agent loop must reach LLM providers on the internet, so the ``app`` subnets route
through a NAT gateway; calls to AWS APIs (Secrets Manager, Step Functions, Lambda, S3)
go through VPC endpoints instead, so they stay inside AWS and do not pay NAT traffic.
Only the app subnets may open a connection to an interface endpoint.

The economy profile's default (``o:economyEgress=ipv6``) has no NAT at all: the VPC is dual-stack, the app
subnets route ``::/0`` to an egress-only internet gateway (no hourly charge, no data-processing charge;
it lets connections out and nothing in), and the functions send IPv6 (``Ipv6AllowedForDualStack``) and
call AWS APIs on their dual-stack endpoints. Their IPv4 traffic to the internet has no route, so a
provider that answers only on IPv4 is unreachable; ``o:economyEgress=natInstance`` adds a NAT instance
for those.

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


def _cpu(instance_type: str) -> ec2.AmazonLinuxCpuType:
    """The AMI's architecture for an instance type: Graviton families (t4g, c7g, ...) are arm64."""
    family = instance_type.split(".")[0]
    return ec2.AmazonLinuxCpuType.ARM_64 if "g" in family[1:] else ec2.AmazonLinuxCpuType.X86_64


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
        nat_instance_type: str | None = None,
        ipv6_egress: bool = False,
    ) -> None:
        super().__init__(scope, construct_id)
        self.ipv6_egress = ipv6_egress
        # Economy: one small NAT instance (an EC2 instance in a public subnet, ~$3/month) instead of NAT
        # gateways (~$33/month each). It is one instance in one AZ: egress stops while it is replaced.
        nat_instance = (
            ec2.NatProvider.instance_v2(
                instance_type=ec2.InstanceType(nat_instance_type),
                machine_image=ec2.MachineImage.latest_amazon_linux2023(cpu_type=_cpu(nat_instance_type)),
                # a burstable instance that never bills surplus credits
                credit_specification=ec2.CpuCredits.STANDARD,
                default_allowed_traffic=ec2.NatTrafficDirection.OUTBOUND_ONLY,
            )
            if nat_instance_type
            else None
        )
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            max_azs=max_azs,
            # Dual-stack: every subnet gets an IPv6 /64 besides its IPv4 range (which does not move); CDK
            # routes the app subnets' ::/0 to an egress-only internet gateway, the isolated ones nowhere.
            ip_protocol=ec2.IpProtocol.DUAL_STACK if ipv6_egress else ec2.IpProtocol.IPV4_ONLY,
            nat_gateways=1 if nat_instance is not None else nat_gateways,
            nat_gateway_provider=nat_instance,
            subnet_configuration=[
                ec2.SubnetConfiguration(name=PUBLIC, subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24),
                ec2.SubnetConfiguration(name=APP, subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS, cidr_mask=22),
                ec2.SubnetConfiguration(name=DATA, subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=24),
                ec2.SubnetConfiguration(name=SANDBOX, subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=24),
            ],
        )
        if nat_instance is not None:
            self._harden_nat_instance()
            # OUTBOUND_ONLY admits nothing: the app subnets (the functions) may send through it, no other
            # subnet (the sandbox's have no route to it anyway) and nothing from the internet.
            for subnet in self.vpc.select_subnets(subnet_group_name=APP).subnets:
                nat_instance.connections.allow_from(
                    ec2.Peer.ipv4(subnet.ipv4_cidr_block),
                    ec2.Port.all_traffic(),
                    f"egress of app subnet {subnet.ipv4_cidr_block}",
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
            allow_all_ipv6_outbound=ipv6_egress,
        )
        # The migrate function alone may reach the database itself (as its owner); the serving functions
        # reach only the proxy (standard) or, as the app role, the cluster (economy).
        self.migrations_security_group = ec2.SecurityGroup(
            self,
            "Migrations",
            vpc=self.vpc,
            description="O migrate function (the database owner): schema migrations",
            allow_all_outbound=True,
            allow_all_ipv6_outbound=ipv6_egress,
        )
        self._add_endpoints(interface_endpoints)
        self._isolate_sandbox()

    def _harden_nat_instance(self) -> None:
        for child in self.vpc.node.find_all():
            if isinstance(child, ec2.CfnInstance):
                # the provider sets no volume: the AMI's root volume, encrypted (AL2023's root device)
                child.block_device_mappings = [
                    ec2.CfnInstance.BlockDeviceMappingProperty(
                        device_name="/dev/xvda", ebs=ec2.CfnInstance.EbsProperty(encrypted=True, volume_type="gp3")
                    )
                ]
                acknowledge(
                    child,
                    ("AwsSolutions-EC28", "the economy profile's NAT instance: detailed monitoring would cost about "
                     "as much as the instance; its basic metrics and the VPC flow log remain"),
                    ("AwsSolutions-EC29", "the NAT instance holds no state: a stack update or delete must be able to "
                     "replace or remove it, which termination protection would block"),
                )  # fmt: skip

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
        return FunctionNetwork(
            vpc=self.vpc,
            subnets=self.app_subnets,
            security_group=self.function_security_group,
            ipv6_egress=self.ipv6_egress,
        )

    @property
    def migrations(self) -> FunctionNetwork:
        """Where the migrate function is placed: the app subnets, a security group of its own."""
        return FunctionNetwork(
            vpc=self.vpc,
            subnets=self.app_subnets,
            security_group=self.migrations_security_group,
            ipv6_egress=self.ipv6_egress,
        )

    @property
    def sandbox(self) -> FunctionNetwork:
        """Where the tool sandbox is placed: isolated subnets, a security group with no way out."""
        return FunctionNetwork(vpc=self.vpc, subnets=self.sandbox_subnets, security_group=self.sandbox_security_group)
