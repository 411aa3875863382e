"""Build the WorkflowTemplateService app."""

from __future__ import annotations

import sqlite3

from treadle.config import ServerConfig, ServiceAddresses
from treadle.grpcutil.server import ServiceBinding
from treadle.services.templates.core import Templates
from treadle.services.templates.repository import TemplateRepository
from treadle.services.templates.service import TemplateServicer
from treadle.templates.v1 import templates_pb2_grpc

SERVICE_NAME = "treadle.templates.v1.WorkflowTemplateService"


class TemplatesApp:
    def __init__(self, templates: Templates) -> None:
        self.templates = templates
        self.binding = ServiceBinding(
            SERVICE_NAME, TemplateServicer(templates), templates_pb2_grpc.add_WorkflowTemplateServiceServicer_to_server
        )

    async def start(self, addresses: ServiceAddresses) -> None:
        return None

    async def stop(self) -> None:
        return None


def build(config: ServerConfig, conn: sqlite3.Connection) -> TemplatesApp:
    return TemplatesApp(Templates(TemplateRepository(conn)))
