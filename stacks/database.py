"""The database (``database=postgres``): Aurora PostgreSQL Serverless v2 behind an RDS Proxy.

* **Pooling that survives Lambda's concurrency.** Every worker environment keeps one
  connection (``lambdas/jobs/database.py``); the proxy multiplexes them onto a bounded pool
  of database connections, and a request it cannot serve waits at most
  ``PROXY_BORROW_TIMEOUT`` before failing (the worker then retries the job).
* **No password in any function.** The worker authenticates to the proxy with an IAM token
  (``IAMAuth: REQUIRED``; it may connect as the app's user only, through this proxy);
  the proxy signs in to Aurora with the generated secret in Secrets Manager, whose
  username must be the token's (Amazon Aurora User Guide, "Connecting to a database
  through RDS Proxy").
* **TLS everywhere.** The proxy refuses clients without TLS (``RequireTLS``) and uses TLS
  to the cluster, which refuses anything else (``rds.force_ssl``).
* **Only the worker reaches it.** Security groups: worker → proxy on 5432, proxy → cluster
  on 5432, nothing else in or out. The cluster's PostgreSQL logs go to a log group with
  the configured retention. Storage encrypted; with ``removal_policy=retain``
  (``prod``), deletion protection on and a final snapshot when the stack is deleted.
* **Capacity.** ``database_min_capacity``/``database_max_capacity`` ACUs. Not zero: Aurora
  Serverless v2 pauses at 0 ACUs only without a proxy, which "maintains an open connection
  to each DB instance" (Aurora User Guide, "Scaling to Zero ACUs with automatic pause and
  resume"), so a minimum of 0 would be billed as if it were not.

The sample task's driver (pg8000, pure Python) is a layer built from the project's own
virtualenv: ``layers/postgres/requirements.txt`` pins it, nothing is downloaded at synth.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_rds as rds
from constructs import Construct

from jobs.settings import Settings
from stacks.config import AppConfig
from stacks.layers import LAYERS_DIR, python_layer
from stacks.network import JobNetwork
from stacks.python_function import acknowledge, log_group

DATABASE_NAME = "jobs"
# Aurora's master user, the one the proxy's secret holds and the worker's token names.
DATABASE_USER = "jobs_admin"
POSTGRES_PORT = 5432
# Aurora PostgreSQL 16 (supported by RDS Proxy and Serverless v2).
ENGINE_VERSION = rds.AuroraPostgresEngineVersion.VER_16_13
# How long a client's request waits for a pooled connection (default 120 s): shorter than
# the worker's default statement timeout (120 s), so the wait ends in the proxy's own error
# (with a shorter one, the worker stops waiting first; either way the attempt is retried).
PROXY_BORROW_TIMEOUT = Duration.seconds(30)
BACKUP_RETENTION = Duration.days(7)
DRIVER_REQUIREMENTS = LAYERS_DIR / "postgres" / "requirements.txt"


def cluster_parameters(config: AppConfig) -> dict[str, str]:
    """The cluster's parameters: TLS only (``rds.force_ssl`` is 0 by default), and the
    statement timeout the worker allows itself enforced by the server too. The worker's
    own timeout drops its connection, but RDS Proxy cannot cancel a PostgreSQL query for a
    client (Aurora User Guide, "Planning where to use RDS Proxy"), so the query would go on
    holding a pooled connection."""
    timeout_ms = config.tuning.database_statement_timeout_seconds * 1000
    return {"rds.force_ssl": "1", "statement_timeout": str(timeout_ms)}


def keep_no_traffic_placeholder(group: ec2.SecurityGroup) -> None:
    """``group`` (``allow_all_outbound=False``) keeps CDK's "Disallow all traffic" egress
    rule inline, whatever rules are added to it as separate resources."""
    resource = group.node.default_child
    assert isinstance(resource, ec2.CfnSecurityGroup)
    resource.add_property_override(
        "SecurityGroupEgress",
        [
            {
                "CidrIp": "255.255.255.255/32",
                "Description": "Disallow all traffic",
                "IpProtocol": "icmp",
                "FromPort": 252,
                "ToPort": 86,
            }
        ],
    )


class JobDatabase(Construct):
    """The cluster, its proxy and their security groups; :meth:`connect` lets a function in."""

    def __init__(self, scope: Construct, construct_id: str, *, config: AppConfig, network: JobNetwork) -> None:
        super().__init__(scope, construct_id)
        self._network = network
        cluster_security_group = ec2.SecurityGroup(
            self,
            "ClusterSecurityGroup",
            vpc=network.vpc,
            description="Aurora: the proxy only",
            allow_all_outbound=False,
        )
        self.proxy_security_group = ec2.SecurityGroup(
            self,
            "ProxySecurityGroup",
            vpc=network.vpc,
            description="RDS Proxy: the worker in, the cluster out",
            allow_all_outbound=False,
        )
        # The proxy -> cluster rules (both groups) come with add_proxy, below, as separate
        # resources; CDK then drops the group's inline placeholder rule, and a group created
        # without inline egress rules allows all outbound traffic (CloudFormation,
        # AWS::EC2::SecurityGroup, SecurityGroupEgress). Keep the placeholder inline.
        keep_no_traffic_placeholder(self.proxy_security_group)
        retained = config.removal == RemovalPolicy.RETAIN
        # Named, so its log group can be created here first, with the configured retention
        # (otherwise RDS creates one that never expires).
        identifier = f"{config.stack_name}-jobs".lower()
        logs = log_group(self, "PostgresLogs", config, name=f"/aws/rds/cluster/{identifier}/postgresql")
        self.cluster = rds.DatabaseCluster(
            self,
            "Cluster",
            cluster_identifier=identifier,
            engine=rds.DatabaseClusterEngine.aurora_postgres(version=ENGINE_VERSION),
            writer=rds.ClusterInstance.serverless_v2("Writer", auto_minor_version_upgrade=True),
            serverless_v2_min_capacity=config.database_min_capacity,
            serverless_v2_max_capacity=config.database_max_capacity,
            credentials=rds.Credentials.from_generated_secret(DATABASE_USER),
            default_database_name=DATABASE_NAME,
            port=POSTGRES_PORT,
            vpc=network.vpc,
            vpc_subnets=network.subnets,
            security_groups=[cluster_security_group],
            storage_encrypted=True,
            parameters=cluster_parameters(config),
            backup=rds.BackupProps(retention=BACKUP_RETENTION),
            cloudwatch_logs_exports=["postgresql"],
            deletion_protection=retained,
            removal_policy=RemovalPolicy.SNAPSHOT if retained else RemovalPolicy.DESTROY,
        )
        self.cluster.node.add_dependency(logs)  # RDS would create the group first, and keep it forever
        secret = self.cluster.secret
        assert secret is not None  # from_generated_secret
        self.proxy = self.cluster.add_proxy(
            "Proxy",
            secrets=[secret],
            vpc=network.vpc,
            vpc_subnets=network.subnets,
            security_groups=[self.proxy_security_group],
            db_proxy_name=identifier,  # unique per account and region, like the stack's name
            iam_auth=True,
            require_tls=True,
            borrow_timeout=PROXY_BORROW_TIMEOUT,
        )
        self.driver_layer = python_layer(
            self, "DriverLayer", DRIVER_REQUIREMENTS, "pg8000 (pure Python) for the sample database task"
        )
        self._suppress_accepted_findings(retained)

    def connect(self, function: lambda_.Function) -> None:
        """Let ``function`` (already in the network) reach the proxy as the app's user: the
        security group rules, the IAM grant, the driver layer and its settings."""
        worker_security_group = self._network.security_group
        self.proxy_security_group.add_ingress_rule(
            worker_security_group, ec2.Port.tcp(POSTGRES_PORT), "PostgreSQL from the worker"
        )
        worker_security_group.add_egress_rule(
            self.proxy_security_group, ec2.Port.tcp(POSTGRES_PORT), "PostgreSQL to the proxy"
        )
        self.proxy.grant_connect(function, DATABASE_USER)
        function.add_layers(self.driver_layer)
        for name, value in self.environment().items():
            function.add_environment(name, value)

    def environment(self) -> dict[str, str]:
        """Where the database is, for the functions that query it."""
        return Settings.variables(
            database_host=self.proxy.endpoint,
            database_port=POSTGRES_PORT,
            database_name=DATABASE_NAME,
            database_user=DATABASE_USER,
        )

    def _suppress_accepted_findings(self, retained: bool) -> None:
        acknowledge(
            self,
            "AwsSolutions-RDS6",
            "Clients authenticate with IAM at the proxy (IAMAuth REQUIRED); the proxy signs in to the cluster "
            "with the Secrets Manager secret, so IAM authentication on the cluster itself would go unused.",
        )
        if not retained:
            acknowledge(
                self,
                "AwsSolutions-RDS10",
                "removal_policy=destroy (the dev stage): the stack and its database are meant to be deleted; "
                "prod (retain) turns deletion protection on.",
            )
        acknowledge(
            self,
            "AwsSolutions-SMG4",
            "Only the proxy reads this password. Rotating it needs a rotation function in the VPC and a "
            "Secrets Manager interface endpoint (about $14.60 a month in two AZs); docs/variants.md says how.",
        )
