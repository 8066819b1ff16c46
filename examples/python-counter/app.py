"""A TownesDev feature in Python: /count counts per server, in storage."""
import json

import wit_world
from wit_world.imports import storage
from wit_world.imports.types import (
    Capability, CapabilityRequest, Command, Manifest, MessageBody, Reply,
)


class WitWorld(wit_world.WitWorld):
    def describe(self) -> Manifest:
        return Manifest(
            id="py-counter",
            version="0.1.0",
            name="Python counter",
            description="Counts /count calls per server.",
            commands=[Command("count", "Count one more", [], [], True, True, None)],
            events=[],
            capabilities=[CapabilityRequest(Capability.STORAGE, True, "keep the count")],
            config_schema=json.dumps({"type": "object"}),
            default_config="{}",
        )

    def on_event(self, ctx, event) -> None:
        return None

    def on_command(self, ctx, invocation) -> Reply:
        n = storage.increment("count", 1)
        who = invocation.invoker.user.username
        return Reply(MessageBody(f"{who} counted {n}", [], []), False, None)

    def on_component(self, ctx, interaction) -> Reply:
        return Reply(MessageBody("nothing here", [], []), True, None)

    def on_schedule(self, ctx, job) -> None:
        return None

    def migrate(self, ctx, from_version: str) -> None:
        return None
