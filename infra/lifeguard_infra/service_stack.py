"""The service: the Chalice app (functions, REST API) with its roles and log groups, queues, the
central event bus and rules, alarms. Everything here can be deleted and re-created; the data
lives in the data stack."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_cdk import Stack
from constructs import Construct

from lifeguard_infra.alarms import Alarms
from lifeguard_infra.api import Api
from lifeguard_infra.config import DeploymentConfig
from lifeguard_infra.data_stack import DataStack
from lifeguard_infra.functions import Functions, log_retention
from lifeguard_infra.grants import Resources
from lifeguard_infra.messaging import Messaging
from lifeguard_infra.registry import FORWARDED_PATTERNS_OF, FUNCTIONS
from lifeguard_infra.routing import Routing


class ServiceStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: DeploymentConfig,
        data: DataStack,
        source_dir: Path,
        work_dir: Path,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.messaging = Messaging(self, "Messaging", config=config, data_key=data.data_key)
        resources = Resources(
            table=data.table,
            idempotency_table=data.idempotency_table,
            bucket=data.bucket,
            data_key=data.data_key,
            queues=dict(self.messaging.queues),
            token_secret=data.token_secret,
            organization_id=config.organization_id,
        )
        self.functions = Functions(
            self,
            "Functions",
            config=config,
            resources=resources,
            event_failures=self.messaging.event_failures,
            source_dir=source_dir,
            work_dir=work_dir,
        )
        retention = log_retention(config.log_retention_days)
        self.api = Api(
            self, "Api", config=config, app=self.functions.app, data_key=data.data_key, retention=retention
        )
        self.routing = Routing(
            self,
            "Routing",
            config=config,
            functions=self.functions,
            queues=self.messaging.queues,
            event_failures=self.messaging.event_failures,
            bucket=data.bucket,
        )
        self.alarms = Alarms(
            self,
            "Alarms",
            topic=self.messaging.alerts,
            dead_letter_queues=self.messaging.dead_letter_queues,
            scan_queue=self.messaging.queues["scan"],
            function_names={spec.name: self.functions.function_name(spec) for spec in FUNCTIONS},
        )

    def forwarded_patterns(self) -> dict[str, dict[str, Any]]:
        """The patterns member accounts forward to the central bus (plain JSON, no tokens)."""
        patterns = self.functions.triggers.patterns
        return {name: patterns[name][0] for name in FORWARDED_PATTERNS_OF}
