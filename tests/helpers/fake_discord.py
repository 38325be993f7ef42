"""A fake Discord (REST API and gateway) on 127.0.0.1 for end-to-end bot tests.

The real discord.py client logs in, connects to the gateway and answers interactions against this
server, so tests exercise the library's actual wire format instead of mocks. Typical use::

    async with FakeDiscord() as fake, running_bot(fake, bot):
        await bot.tree.sync(guild=discord.Object(fake.guild_id))
        interaction = await fake.send_slash_command("ask", {"question": "Why?"})
        followup = await fake.wait_for_request(
            lambda r: r.method == "POST" and r.path == interaction.webhook_path
        )

Like Discord, the fake only knows commands the bot has synced, rejects an interaction callback
that comes later than ``ack_deadline`` seconds (a missing ``defer`` fails the test) and refuses
REST calls without the bot token, and rejects message bodies over Discord's limits (400, code
50035) as Discord does. Calls it cannot serve are answered with 404 and kept in
``FakeDiscord.unhandled``; ``running_bot`` fails the test if any remain.
"""

from __future__ import annotations

import asyncio
import copy
import json
import re
import secrets
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, NamedTuple, TypeVar

import discord
import yarl
from aiohttp import BodyPartReader, WSMsgType, web
from discord.gateway import DiscordWebSocket
from discord.http import Route

from tests.helpers.discord_limits import message_problems

API_VERSION = 10
DISCORD_EPOCH_MS = 1_420_070_400_000
# How long an interaction token takes followups and edits.
TOKEN_LIFETIME_SECONDS = 15 * 60

# Message flags.
EPHEMERAL = 1 << 6
LOADING = 1 << 7

# Interaction types.
APPLICATION_COMMAND = 2
MESSAGE_COMPONENT = 3

# Interaction callback types (discord.InteractionResponseType).
CHANNEL_MESSAGE = 4
DEFERRED_CHANNEL_MESSAGE = 5
DEFERRED_UPDATE_MESSAGE = 6
UPDATE_MESSAGE = 7

# Message types.
DEFAULT_MESSAGE = 0
REPLY_MESSAGE = 19
CHAT_INPUT_COMMAND_MESSAGE = 20

BUTTON = 2
SCALAR_OPTION_TYPES = {3, 4, 5, 10}  # string, integer, boolean, number

ADMINISTRATOR = discord.Permissions(administrator=True).value
EVERYONE_PERMISSIONS = discord.Permissions(
    view_channel=True,
    send_messages=True,
    send_messages_in_threads=True,
    create_public_threads=True,
    embed_links=True,
    attach_files=True,
    add_reactions=True,
    read_message_history=True,
    use_application_commands=True,
).value
BOT_PERMISSIONS = (
    EVERYONE_PERMISSIONS | discord.Permissions(manage_threads=True, manage_messages=True).value
)

# Fields a message takes from a create or edit body, with their empty value.
_MESSAGE_FIELDS: dict[str, Callable[[], Any]] = {
    "content": str,
    "embeds": list,
    "components": list,
    "flags": int,
}

_BACKLOG = 4096  # connections the kernel queues for accept(); Linux caps it at somaxconn

BotT = TypeVar("BotT", bound=discord.Client)
Reply = tuple[int, Any]
Handler = Callable[..., Awaitable[Reply]]


@dataclass(frozen=True)
class RecordedRequest:
    """One REST call the client made, as the fake received and answered it."""

    method: str
    path: str  # below /api/v10, e.g. "/interactions/1/abc/callback"
    query: dict[str, str]
    json: Any  # JSON body, or the payload_json part of a multipart body; None if empty
    files: dict[str, bytes]  # multipart attachments by filename
    status: int
    response: Any  # JSON the fake answered with; None for 204


@dataclass
class _Fault:
    """An error the next matching calls get instead of their answer (see `FakeDiscord.fail`)."""

    matches: Callable[[str, str, Any], bool]
    reply: tuple[int, dict[str, Any]]
    times: int


@dataclass(frozen=True)
class FakeUser:
    """A guild member; ``permissions`` is the resolved permission bit set Discord would send."""

    id: int
    username: str
    permissions: int
    role_ids: tuple[int, ...] = ()
    bot: bool = False

    def payload(self) -> dict[str, Any]:
        """The user object as Discord serialises it."""
        return {
            "id": str(self.id),
            "username": self.username,
            "global_name": self.username,
            "discriminator": "0",
            "avatar": None,
            "bot": self.bot,
            "public_flags": 0,
        }

    def member_payload(self) -> dict[str, Any]:
        """The guild member object (without the interaction-only ``permissions``)."""
        return {
            "user": self.payload(),
            "roles": [str(r) for r in self.role_ids],
            "nick": None,
            "avatar": None,
            "joined_at": "2024-01-01T00:00:00+00:00",
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "pending": False,
            "flags": 0,
            "communication_disabled_until": None,
        }


@dataclass
class FakeInteraction:
    """An interaction the fake dispatched, and how the bot has answered it so far."""

    payload: dict[str, Any]  # the INTERACTION_CREATE data sent on the gateway
    sent_at: float  # event loop time, for the acknowledgement deadline
    expires_at: float  # wall-clock time its token stops working (15 minutes after creation)
    response_type: int | None = None  # callback type once acknowledged
    original_id: int | None = None  # message id behind ".../messages/@original"
    followup_ids: list[int] = field(default_factory=list)

    @property
    def id(self) -> int:
        """The interaction id."""
        return int(self.payload["id"])

    @property
    def token(self) -> str:
        """The interaction token, also the followup webhook token."""
        return self.payload["token"]

    @property
    def callback_path(self) -> str:
        """REST path of the initial response (``InteractionResponse``)."""
        return f"/interactions/{self.id}/{self.token}/callback"

    @property
    def webhook_path(self) -> str:
        """REST path prefix of followups and original-response edits."""
        return f"/webhooks/{self.payload['application_id']}/{self.token}"


class _Call(NamedTuple):
    """The parsed body and query of a REST call, handed to route handlers."""

    json: Any
    files: dict[str, bytes]
    query: dict[str, str]


def _now() -> str:
    """Current time in Discord's ISO 8601 format."""
    return datetime.now(UTC).isoformat()


class _DiscordError(Exception):
    """A Discord JSON error; route handlers raise it, ``FakeDiscord._api`` answers with it."""

    def __init__(
        self, status: int, code: int, message: str, payload: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.reply: Reply = status, payload or {"code": code, "message": message}


def _flag(query: dict[str, str], name: str) -> bool:
    """Whether a boolean query parameter (discord.py sends "1") is set."""
    return query.get(name, "").lower() in ("1", "true")


def _json_response(status: int, payload: Any) -> web.Response:
    """Serialise a reply; discord.py parses JSON only for a bare application/json type."""
    if payload is None:
        return web.Response(status=204)
    return web.Response(
        status=status,
        body=json.dumps(payload).encode(),
        # Discord answers through Google's proxy; discord.py takes a 429 without it for a ban.
        headers={"Content-Type": "application/json", "Via": "1.1 google"},
    )


async def _read_body(request: web.Request) -> tuple[Any, dict[str, bytes]]:
    """Parse a JSON body or a multipart body (``payload_json`` plus ``files[n]`` parts)."""
    if request.content_type != "multipart/form-data":
        raw = await request.read()
        return (json.loads(raw) if raw else None), {}
    body: Any = None
    files: dict[str, bytes] = {}
    async for part in await request.multipart():
        if not isinstance(part, BodyPartReader):
            continue
        if part.name == "payload_json":
            body = json.loads(await part.text())
        elif part.filename:
            files[part.filename] = bytes(await part.read())
    return body, files


def _check_limits(body: dict[str, Any]) -> None:
    """Reject a message body over Discord's limits, with Discord's error."""
    problems = message_problems(body)
    if problems:
        raise _DiscordError(400, 50035, "Invalid Form Body: " + "; ".join(problems))


def _compile(pattern: str) -> re.Pattern[str]:
    """Turn "/channels/{channel_id}" into a regex with named groups."""
    return re.compile(re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern) + "$")


def _find_component(components: list[dict[str, Any]], custom_id: str) -> dict[str, Any] | None:
    """Search action rows and nested (components v2) layouts for a component."""
    for component in components:
        if component.get("custom_id") == custom_id:
            return component
        nested = list(component.get("components", []))
        if "accessory" in component:
            nested.append(component["accessory"])
        found = _find_component(nested, custom_id)
        if found is not None:
            return found
    return None


class FakeDiscord:
    """Discord's REST API (``/api/v10``) and gateway (``/gateway``) for one guild and one bot."""

    application_id: ClassVar[int] = 1_000_000_000_000_000_001  # also the bot user id
    guild_id: ClassVar[int] = 1_000_000_000_000_000_100
    channel_id: ClassVar[int] = 1_000_000_000_000_000_200
    admin_role_id: ClassVar[int] = 1_000_000_000_000_000_300
    bot_role_id: ClassVar[int] = 1_000_000_000_000_000_301
    token: ClassVar[str] = "fake-bot-token"

    def __init__(self, *, ack_deadline: float = 3.0) -> None:
        """``ack_deadline``: seconds a bot has to answer an interaction, as on Discord."""
        self.ack_deadline = ack_deadline
        self.bot_user = FakeUser(
            self.application_id, "citebot", BOT_PERMISSIONS, (self.bot_role_id,), bot=True
        )
        self.admin_user = FakeUser(
            1_000_000_000_000_000_400,
            "admin-alice",
            discord.Permissions.all().value,
            (self.admin_role_id,),
        )
        self.member_user = FakeUser(1_000_000_000_000_000_401, "member-bob", EVERYONE_PERMISSIONS)
        self.requests: list[RecordedRequest] = []
        self.unhandled: list[RecordedRequest] = []  # unknown routes and failures of the fake
        self._faults: list[_Fault] = []
        self.gateway_messages: list[dict[str, Any]] = []  # every frame the client sent
        self.messages: dict[int, dict[str, Any]] = {}
        self.channels: dict[int, dict[str, Any]] = {
            self.channel_id: self._text_channel(self.channel_id, "general")
        }
        self.commands: dict[int | None, dict[str, dict[str, Any]]] = {}  # guild id (None: global)
        self.interactions: dict[int, FakeInteraction] = {}
        self._sockets: set[web.WebSocketResponse] = set()
        self._session: web.WebSocketResponse | None = None  # the identified gateway connection
        self._sequence = 0
        self._snowflake_counter = 0
        self._waiters: list[tuple[Callable[[RecordedRequest], bool], asyncio.Future[Any]]] = []
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = [
            (method, _compile(pattern), handler)
            for method, pattern, handler in [
                ("GET", "/users/@me", self._get_me),
                ("GET", "/oauth2/applications/@me", self._get_application),
                ("GET", "/gateway/bot", self._get_bot_gateway),
                ("PUT", "/applications/{app_id}/commands", self._put_commands),
                ("PUT", "/applications/{app_id}/guilds/{guild_id}/commands", self._put_commands),
                ("POST", "/interactions/{interaction_id}/{token}/callback", self._callback),
                ("POST", "/webhooks/{app_id}/{token}", self._create_followup),
                ("GET", "/webhooks/{app_id}/{token}/messages/{message_id}", self._get_webhook_msg),
                (
                    "PATCH",
                    "/webhooks/{app_id}/{token}/messages/{message_id}",
                    self._edit_webhook_msg,
                ),
                (
                    "DELETE",
                    "/webhooks/{app_id}/{token}/messages/{message_id}",
                    self._del_webhook_msg,
                ),
                ("POST", "/channels/{channel_id}/messages", self._create_channel_msg),
                ("PATCH", "/channels/{channel_id}/messages/{message_id}", self._edit_channel_msg),
                ("POST", "/channels/{channel_id}/messages/{message_id}/threads", self._thread),
                ("POST", "/channels/{channel_id}/threads", self._thread),
            ]
        ]

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Serve on a free port of 127.0.0.1."""
        app = web.Application()
        app.router.add_get("/gateway", self._gateway)
        app.router.add_route("*", f"/api/v{API_VERSION}/{{path:.*}}", self._api)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self._port = sock.getsockname()[1]
        # Discord accepts any number of connections at once; aiohttp's default backlog (128)
        # would drop the SYNs of a burst of callbacks while the loop is busy, and the kernel
        # resends them only after 1 s, then 3 s: too late for the acknowledgement deadline.
        await web.SockSite(self._runner, sock, backlog=_BACKLOG).start()

    async def stop(self) -> None:
        """Close gateway connections and the server (stop the bot first)."""
        for ws in list(self._sockets):
            await ws.close(code=1001)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeDiscord:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        """REST base URL, the value for ``discord.http.Route.BASE``."""
        if self._port is None:
            raise RuntimeError("FakeDiscord is not started")
        return f"http://127.0.0.1:{self._port}/api/v{API_VERSION}"

    @property
    def gateway_url(self) -> str:
        """Gateway URL, without the query discord.py appends."""
        if self._port is None:
            raise RuntimeError("FakeDiscord is not started")
        return f"ws://127.0.0.1:{self._port}/gateway"

    # -- test API --------------------------------------------------------------------------

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        """Send a gateway DISPATCH (op 0) event to the connected bot."""
        if self._session is None:
            raise RuntimeError("no bot is connected to the fake gateway")
        await self._dispatch_to(self._session, event, data)

    async def send_slash_command(
        self,
        name: str,
        options: dict[str, Any] | None = None,
        *,
        user: FakeUser | None = None,
        permissions: int | None = None,
        channel_id: int | None = None,
        bypass_default_permissions: bool = False,
        token_seconds_left: float = TOKEN_LIFETIME_SECONDS,
    ) -> FakeInteraction:
        """Invoke a synced chat-input command as ``user`` (default: ``member_user``).

        ``options`` maps option names to scalar values; their types come from the synced
        command, and Discord's client-side checks (unknown or missing options, the command's
        ``default_member_permissions``) raise here instead of sending the interaction.
        ``bypass_default_permissions`` plays a server whose integration settings let the
        user see the command anyway, so only the bot's own checks stand in the way.
        ``token_seconds_left`` plays an interaction created earlier (its id's time says so),
        whose token stops working that many seconds from now: followups and edits through it
        then fail as Discord's do (401, Invalid Webhook Token).
        """
        user = user or self.member_user
        permissions = user.permissions if permissions is None else permissions
        guild_command = self.commands.get(self.guild_id, {}).get(name)
        command = guild_command or self.commands.get(None, {}).get(name)
        if command is None:
            raise LookupError(
                f"/{name} is not synced; call `await bot.tree.sync(...)` before invoking it"
            )
        required = command.get("default_member_permissions")
        if (
            required is not None
            and not permissions & ADMINISTRATOR
            and not bypass_default_permissions
        ):
            needed = int(required)
            if not needed or (permissions & needed) != needed:
                raise PermissionError(f"Discord does not offer /{name} to {user.username}")
        data: dict[str, Any] = {
            "id": command["id"],
            "name": name,
            "type": 1,
            "options": self._command_options(command, options or {}),
        }
        if guild_command is not None:
            data["guild_id"] = str(self.guild_id)
        return await self._interact(
            APPLICATION_COMMAND, data, user, permissions, channel_id, token_seconds_left
        )

    async def add_text_channel(self, name: str, *, category_id: int | None = None) -> int:
        """Create a text channel (in a category, optionally); a connected bot is told."""
        return await self._add_channel(self._text_channel(self._snowflake(), name, category_id))

    async def add_category(self, name: str) -> int:
        """Create a category channel; a connected bot is told."""
        category = {
            "id": str(self._snowflake()),
            "type": 4,
            "guild_id": str(self.guild_id),
            "name": name,
            "position": 0,
            "parent_id": None,
            "nsfw": False,
            "permission_overwrites": [],
        }
        return await self._add_channel(category)

    async def _add_channel(self, channel: dict[str, Any]) -> int:
        self.channels[int(channel["id"])] = channel
        if self._session is not None:
            await self._dispatch_to(self._session, "CHANNEL_CREATE", channel)
        return int(channel["id"])

    async def click_button(
        self,
        message: dict[str, Any],
        custom_id: str,
        *,
        user: FakeUser | None = None,
        permissions: int | None = None,
    ) -> FakeInteraction:
        """Click the button ``custom_id`` on ``message`` (a message object the fake returned)."""
        user = user or self.member_user
        current = self.messages.get(int(message["id"]), message)
        button = _find_component(current.get("components", []), custom_id)
        if button is None or button["type"] != BUTTON:
            raise ValueError(f"message {current['id']} has no button {custom_id!r}")
        data = {"custom_id": custom_id, "component_type": BUTTON}
        return await self._interact(
            MESSAGE_COMPONENT,
            data,
            user,
            user.permissions if permissions is None else permissions,
            int(current["channel_id"]),
            message=current,
        )

    async def wait_for_request(
        self, predicate: Callable[[RecordedRequest], bool], timeout: float = 10.0
    ) -> RecordedRequest:
        """Return the first recorded request (past or future) matching ``predicate``."""
        for request in self.requests:
            if predicate(request):
                return request
        future: asyncio.Future[RecordedRequest] = asyncio.get_running_loop().create_future()
        waiter = (predicate, future)
        self._waiters.append(waiter)
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            seen = "\n".join(f"  {r.status} {r.method} {r.path}" for r in self.requests)
            raise AssertionError(
                f"no matching request within {timeout}s; recorded:\n{seen}"
            ) from None
        finally:
            self._waiters.remove(waiter)

    def requests_for(self, interaction: FakeInteraction) -> list[RecordedRequest]:
        """REST calls about ``interaction``: its callback, followups and edits, in order."""
        prefixes = (interaction.callback_path, interaction.webhook_path)
        return [r for r in self.requests if r.path.startswith(prefixes)]

    def messages_for(self, interaction: FakeInteraction) -> list[dict[str, Any]]:
        """Current state of the messages the interaction's answers created or edited."""
        ids = [interaction.original_id, *interaction.followup_ids]
        return [self.messages[i] for i in ids if i in self.messages]

    def fail(
        self,
        matches: Callable[[str, str, Any], bool],
        status: int,
        code: int = 0,
        message: str = "",
        *,
        retry_after: float | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next `times` calls for which `matches(method, path, json)` holds with a
        Discord error instead; a 429 with `retry_after` is a rate limit as Discord sends it."""
        payload: dict[str, Any] = {"code": code, "message": message or f"{status}: fault"}
        if retry_after is not None:
            payload = {
                "message": "You are being rate limited.",
                "retry_after": retry_after,
                "global": False,
            }
        self._faults.append(_Fault(matches, (status, payload), times))

    def messages_in(self, channel_id: int) -> list[dict[str, Any]]:
        """Current state of every message in a channel or thread, oldest first."""
        return [m for m in self.messages.values() if m["channel_id"] == str(channel_id)]

    # -- payloads --------------------------------------------------------------------------

    def _snowflake(self, at: float | None = None) -> int:
        """A fresh snowflake of the time `at` (default: now)."""
        self._snowflake_counter += 1
        ms = int((time.time() if at is None else at) * 1000) - DISCORD_EPOCH_MS
        return (ms << 22) | (self._snowflake_counter & 0xFFF)

    def _text_channel(
        self, channel_id: int, name: str, category_id: int | None = None
    ) -> dict[str, Any]:
        """A text channel of the guild."""
        return {
            "id": str(channel_id),
            "type": 0,
            "guild_id": str(self.guild_id),
            "name": name,
            "position": 0,
            "parent_id": str(category_id) if category_id is not None else None,
            "topic": None,
            "nsfw": False,
            "last_message_id": None,
            "rate_limit_per_user": 0,
            "default_auto_archive_duration": 1440,
            "permission_overwrites": [],
        }

    def _role(self, role_id: int, name: str, permissions: int, position: int) -> dict[str, Any]:
        """A role object."""
        return {
            "id": str(role_id),
            "name": name,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "icon": None,
            "unicode_emoji": None,
            "position": position,
            "permissions": str(permissions),
            "managed": role_id == self.bot_role_id,
            "mentionable": False,
            "flags": 0,
        }

    def _members(self) -> list[dict[str, Any]]:
        """Every guild member, as GUILD_MEMBERS_CHUNK sends them."""
        return [u.member_payload() for u in (self.bot_user, self.admin_user, self.member_user)]

    def _guild(self) -> dict[str, Any]:
        """The complete GUILD_CREATE payload; discord.py's client dies on missing keys.

        Like Discord without the presences intent, it lists only the bot as member; a bot with
        the members intent then requests the rest (op 8).
        """
        return {
            "id": str(self.guild_id),
            "name": "Citebot Test Guild",
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(self.admin_user.id),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "premium_progress_bar_enabled": False,
            "preferred_locale": "en-US",
            "features": [],
            "system_channel_id": None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "vanity_url_code": None,
            "application_id": None,
            "max_members": 500_000,
            "roles": [
                self._role(self.guild_id, "@everyone", EVERYONE_PERMISSIONS, 0),
                self._role(self.admin_role_id, "Admin", ADMINISTRATOR, 1),
                self._role(self.bot_role_id, "Citebot", BOT_PERMISSIONS, 2),
            ],
            "emojis": [],
            "stickers": [],
            "joined_at": "2024-01-01T00:00:00+00:00",
            "large": False,
            "unavailable": False,
            "member_count": len(self._members()),
            "members": [self.bot_user.member_payload()],
            "channels": [c for c in self.channels.values() if c["type"] not in (11, 12)],
            "threads": [c for c in self.channels.values() if c["type"] in (11, 12)],
            "voice_states": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
        }

    def _application(self) -> dict[str, Any]:
        """The application object login fetches."""
        return {
            "id": str(self.application_id),
            "name": "Citebot",
            "icon": None,
            "description": "",
            "summary": "",
            "bot_public": False,
            "bot_require_code_grant": False,
            "verify_key": "0" * 64,
            "owner": self.admin_user.payload(),
            "team": None,
            "flags": 0,
            "rpc_origins": [],
            "interactions_endpoint_url": None,
            "redirect_uris": [],
            "tags": [],
            "bot": self.bot_user.payload(),
        }

    def _command_options(
        self, command: dict[str, Any], options: dict[str, Any]
    ) -> list[dict[str, Any]]:
        """Interaction options for ``options``, typed and checked against the synced command."""
        declared = {o["name"]: o for o in command.get("options", [])}
        unknown = sorted(set(options) - set(declared))
        missing = sorted(n for n, o in declared.items() if o.get("required") and n not in options)
        if unknown or missing:
            raise ValueError(f"/{command['name']}: unknown options {unknown}, missing {missing}")
        result = []
        for name, value in options.items():
            option_type = declared[name]["type"]
            if option_type not in SCALAR_OPTION_TYPES:
                raise ValueError(f"/{command['name']} {name}: only scalar options are supported")
            result.append({"name": name, "type": option_type, "value": value})
        return result

    async def _interact(
        self,
        interaction_type: int,
        data: dict[str, Any],
        user: FakeUser,
        permissions: int,
        channel_id: int | None,
        token_seconds_left: float = TOKEN_LIFETIME_SECONDS,
        *,
        message: dict[str, Any] | None = None,
    ) -> FakeInteraction:
        """Build, record and dispatch an INTERACTION_CREATE."""
        channel = copy.deepcopy(self.channels[channel_id or self.channel_id])
        created = time.time() - (TOKEN_LIFETIME_SECONDS - token_seconds_left)
        payload: dict[str, Any] = {
            "id": str(self._snowflake(created)),
            "application_id": str(self.application_id),
            "type": interaction_type,
            "data": data,
            "guild_id": str(self.guild_id),
            "guild": {"id": str(self.guild_id), "locale": "en-US", "features": []},
            "channel_id": channel["id"],
            "channel": channel,
            "member": {**user.member_payload(), "permissions": str(permissions)},
            "token": secrets.token_urlsafe(32),
            "version": 1,
            "app_permissions": str(self.bot_user.permissions),
            "locale": "en-US",
            "guild_locale": "en-US",
            "entitlements": [],
            "authorizing_integration_owners": {"0": str(self.guild_id)},
            "context": 0,
            "attachment_size_limit": 10 * 1024 * 1024,
        }
        if message is not None:
            payload["message"] = copy.deepcopy(message)
        # Registered first: the bot may answer before dispatch() returns.
        interaction = FakeInteraction(
            payload, asyncio.get_running_loop().time(), created + TOKEN_LIFETIME_SECONDS
        )
        self.interactions[interaction.id] = interaction
        await self.dispatch("INTERACTION_CREATE", payload)
        return interaction

    def _attachments(self, files: dict[str, bytes]) -> list[dict[str, Any]]:
        """Attachment objects for uploaded files."""
        attachments = []
        for filename, content in files.items():
            attachment_id = self._snowflake()
            url = f"http://127.0.0.1:{self._port}/attachments/{attachment_id}/{filename}"
            attachments.append(
                {
                    "id": str(attachment_id),
                    "filename": filename,
                    "size": len(content),
                    "url": url,
                    "proxy_url": url,
                }
            )
        return attachments

    def _new_message(
        self,
        channel_id: int,
        body: dict[str, Any],
        files: dict[str, bytes],
        *,
        message_type: int,
        interaction: FakeInteraction | None = None,
    ) -> dict[str, Any]:
        """Create and store a full message object authored by the bot."""
        _check_limits(body)
        message: dict[str, Any] = {
            "id": str(self._snowflake()),
            "channel_id": str(channel_id),
            "guild_id": str(self.guild_id),
            "author": self.bot_user.payload(),
            "type": message_type,
            "timestamp": _now(),
            "edited_timestamp": None,
            "tts": bool(body.get("tts")),
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": self._attachments(files),
            "pinned": False,
        }
        for key, empty in _MESSAGE_FIELDS.items():
            value = body.get(key)
            message[key] = empty() if value is None else value
        if "message_reference" in body:
            message["message_reference"] = body["message_reference"]
        if interaction is not None:
            invoker = interaction.payload["member"]["user"]
            message["webhook_id"] = message["application_id"] = str(self.application_id)
            message["interaction_metadata"] = {
                "id": str(interaction.id),
                "type": interaction.payload["type"],
                "user": invoker,
                "authorizing_integration_owners": {"0": str(self.guild_id)},
            }
        self.messages[int(message["id"])] = message
        return message

    def _edit_message(
        self, message_id: int, body: dict[str, Any], files: dict[str, bytes]
    ) -> dict[str, Any]:
        """Apply an edit; any edit also resolves a deferred ("thinking") message."""
        _check_limits(body)
        message = self.messages[message_id]
        for key, empty in _MESSAGE_FIELDS.items():
            if key in body:
                message[key] = empty() if body[key] is None else body[key]
        message["flags"] &= ~LOADING
        if "attachments" in body:
            kept = {str(a.get("id")) for a in body["attachments"]}
            old = [a for a in message["attachments"] if a["id"] in kept]
            message["attachments"] = old + self._attachments(files)
        elif files:
            message["attachments"] = message["attachments"] + self._attachments(files)
        message["edited_timestamp"] = _now()
        return message

    # -- gateway ---------------------------------------------------------------------------

    async def _send(self, ws: web.WebSocketResponse, frame: dict[str, Any]) -> None:
        """Send one uncompressed text frame (discord.py only inflates binary frames)."""
        await ws.send_str(json.dumps(frame))

    async def _dispatch_to(self, ws: web.WebSocketResponse, event: str, data: Any) -> None:
        """Send a DISPATCH with the next sequence number."""
        self._sequence += 1
        await self._send(ws, {"op": 0, "t": event, "s": self._sequence, "d": data})

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        """Run one gateway connection: HELLO, then answer IDENTIFY, heartbeats, member requests."""
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        if request.query.get("v") != str(API_VERSION) or request.query.get("encoding") != "json":
            await ws.close(code=4012, message=b"Invalid API version or encoding")
            return ws
        self._sockets.add(ws)
        try:
            await self._send(ws, {"op": 10, "d": {"heartbeat_interval": 41_250}})
            async for frame in ws:
                if frame.type is WSMsgType.TEXT:
                    await self._on_gateway_frame(ws, json.loads(frame.data))
        finally:
            self._sockets.discard(ws)
            if self._session is ws:
                self._session = None
        return ws

    async def _on_gateway_frame(self, ws: web.WebSocketResponse, frame: dict[str, Any]) -> None:
        """React to one client frame like Discord does."""
        self.gateway_messages.append(frame)
        op, data = frame.get("op"), frame.get("d")
        if op == 1:  # HEARTBEAT
            await self._send(ws, {"op": 11})
        elif op == 2:  # IDENTIFY
            if data["token"] != self.token:
                await ws.close(code=4004, message=b"Authentication failed.")
                return
            self._session = ws
            ready = {
                "v": API_VERSION,
                "user": {**self.bot_user.payload(), "verified": True, "mfa_enabled": False},
                "guilds": [{"id": str(self.guild_id), "unavailable": True}],
                "session_id": secrets.token_hex(16),
                "resume_gateway_url": self.gateway_url,
                "application": {"id": str(self.application_id), "flags": 0},
                "shard": data.get("shard", [0, 1]),
            }
            await self._dispatch_to(ws, "READY", ready)
            await self._dispatch_to(ws, "GUILD_CREATE", self._guild())
        elif op == 8:  # REQUEST_GUILD_MEMBERS, sent when the bot chunks with the members intent
            chunk = {
                "guild_id": data["guild_id"],
                "members": self._members(),
                "chunk_index": 0,
                "chunk_count": 1,
                "not_found": [],
                "nonce": data.get("nonce"),
            }
            await self._dispatch_to(ws, "GUILD_MEMBERS_CHUNK", chunk)

    # -- REST ------------------------------------------------------------------------------

    async def _api(self, request: web.Request) -> web.Response:
        """Authenticate, route, record and answer one REST call."""
        path = "/" + request.match_info["path"]
        query = dict(request.query)
        body: Any = None
        files: dict[str, bytes] = {}
        served = True
        try:
            body, files = await _read_body(request)
            needs_auth = not path.startswith(("/interactions/", "/webhooks/"))
            route = self._match(request.method, path)
            if needs_auth and request.headers.get("Authorization") != f"Bot {self.token}":
                raise _DiscordError(401, 0, "401: Unauthorized")
            if route is None:
                served = False
                raise _DiscordError(404, 0, "404: Not Found")
            handler, params = route
            self._raise_fault(request.method, path, body)
            status, payload = await handler(_Call(body, files, query), **params)
        except _DiscordError as error:
            status, payload = error.reply
        except Exception as exc:  # a bug in the fake must fail fast, not trigger 5xx retries
            served = False
            status, payload = _DiscordError(400, 0, f"fake Discord failed: {exc!r}").reply
        response = _json_response(status, payload)
        snapshot = copy.deepcopy(payload)  # stored messages keep changing with later edits
        self._record(
            RecordedRequest(request.method, path, query, body, files, status, snapshot),
            served=served,
        )
        return response

    def _raise_fault(self, method: str, path: str, body: Any) -> None:
        """Raise the first pending fault this call matches, using one of its times."""
        for fault in self._faults:
            if fault.times > 0 and fault.matches(method, path, body):
                fault.times -= 1
                raise _DiscordError(fault.reply[0], 0, "", fault.reply[1])

    def _match(self, method: str, path: str) -> tuple[Handler, dict[str, str]] | None:
        """Find the handler and path parameters for a call."""
        for route_method, pattern, handler in self._routes:
            match = pattern.match(path)
            if route_method == method and match:
                return handler, match.groupdict()
        return None

    def _record(self, recorded: RecordedRequest, *, served: bool) -> None:
        """Store a call and wake ``wait_for_request`` callers it satisfies."""
        self.requests.append(recorded)
        if not served:
            self.unhandled.append(recorded)
        for predicate, future in self._waiters:
            if future.done():
                continue
            try:
                if predicate(recorded):
                    future.set_result(recorded)
            except Exception as exc:
                future.set_exception(exc)

    async def _get_me(self, call: _Call) -> Reply:
        return 200, self.bot_user.payload()

    async def _get_application(self, call: _Call) -> Reply:
        return 200, self._application()

    async def _get_bot_gateway(self, call: _Call) -> Reply:
        limit = {"total": 1000, "remaining": 1000, "reset_after": 0, "max_concurrency": 1}
        return 200, {"url": self.gateway_url, "shards": 1, "session_start_limit": limit}

    async def _put_commands(self, call: _Call, app_id: str, guild_id: str | None = None) -> Reply:
        """Bulk overwrite: echo the commands with ids, keeping ids of commands that stay."""
        scope = int(guild_id) if guild_id else None
        old = self.commands.get(scope, {})
        synced: dict[str, dict[str, Any]] = {}
        for command in call.json:
            previous = old.get(command["name"])
            synced[command["name"]] = {
                "type": 1,
                "description": "",
                **command,
                "id": previous["id"] if previous else str(self._snowflake()),
                "application_id": app_id,
                "version": str(self._snowflake()),
                **({"guild_id": guild_id} if guild_id else {}),
            }
        self.commands[scope] = synced
        return 200, list(synced.values())

    async def _callback(self, call: _Call, interaction_id: str, token: str) -> Reply:
        """The initial interaction response, only accepted within ``ack_deadline``."""
        interaction = self.interactions.get(int(interaction_id))
        if interaction is None or interaction.token != token:
            raise _DiscordError(404, 10062, "Unknown interaction")
        if interaction.response_type is not None:
            raise _DiscordError(400, 40060, "Interaction has already been acknowledged.")
        if asyncio.get_running_loop().time() - interaction.sent_at > self.ack_deadline:
            raise _DiscordError(404, 10062, "Unknown interaction")
        response_type: int = call.json["type"]
        data: dict[str, Any] = call.json.get("data") or {}
        channel_id = int(interaction.payload["channel_id"])
        clicked = interaction.payload.get("message")
        message: dict[str, Any] | None = None
        if response_type in (CHANNEL_MESSAGE, DEFERRED_CHANNEL_MESSAGE):
            if response_type == DEFERRED_CHANNEL_MESSAGE:
                data = {"flags": (data.get("flags") or 0) | LOADING}
            message_type = (
                CHAT_INPUT_COMMAND_MESSAGE
                if interaction.payload["type"] == APPLICATION_COMMAND
                else DEFAULT_MESSAGE
            )
            message = self._new_message(
                channel_id, data, call.files, message_type=message_type, interaction=interaction
            )
            interaction.original_id = int(message["id"])
        elif response_type in (DEFERRED_UPDATE_MESSAGE, UPDATE_MESSAGE):
            if clicked is None:
                raise _DiscordError(400, 50035, "Invalid Form Body: no message to update")
            interaction.original_id = int(clicked["id"])
            if response_type == UPDATE_MESSAGE:
                message = self._edit_message(interaction.original_id, data, call.files)
        interaction.response_type = response_type
        if not _flag(call.query, "with_response"):
            return 204, None
        resource: dict[str, Any] = {"type": response_type}
        if message is not None:
            resource["message"] = message
        flags = message["flags"] if message is not None else 0
        return 200, {
            "interaction": {
                "id": str(interaction.id),
                "type": interaction.payload["type"],
                "response_message_id": message["id"] if message is not None else None,
                "response_message_loading": bool(flags & LOADING),
                "response_message_ephemeral": bool(flags & EPHEMERAL),
            },
            "resource": resource,
        }

    def _webhook_interaction(self, app_id: str, token: str) -> FakeInteraction:
        """The acknowledged interaction whose followup webhook this is."""
        if int(app_id) == self.application_id:
            for interaction in self.interactions.values():
                if interaction.token == token and interaction.response_type is not None:
                    if time.time() >= interaction.expires_at:
                        raise _DiscordError(401, 50027, "Invalid Webhook Token")
                    return interaction
        raise _DiscordError(404, 10015, "Unknown Webhook")

    def _webhook_message(self, app_id: str, token: str, message_id: str) -> int:
        """Resolve "@original" or the id of one of the interaction's messages."""
        interaction = self._webhook_interaction(app_id, token)
        if message_id == "@original":
            resolved = interaction.original_id
        elif int(message_id) in (interaction.original_id, *interaction.followup_ids):
            resolved = int(message_id)
        else:
            resolved = None
        if resolved is None or resolved not in self.messages:
            raise _DiscordError(404, 10008, "Unknown Message")
        return resolved

    def _channel(self, channel_id: str) -> dict[str, Any]:
        """A known channel or thread."""
        channel = self.channels.get(int(channel_id))
        if channel is None:
            raise _DiscordError(404, 10003, "Unknown Channel")
        return channel

    def _channel_message(self, channel_id: str, message_id: str) -> dict[str, Any]:
        """A stored message of that channel."""
        message = self.messages.get(int(message_id))
        if message is None or message["channel_id"] != channel_id:
            raise _DiscordError(404, 10008, "Unknown Message")
        return message

    async def _create_followup(self, call: _Call, app_id: str, token: str) -> Reply:
        """A followup; the first one after a deferral replaces the "thinking" message."""
        interaction = self._webhook_interaction(app_id, token)
        original = self.messages.get(interaction.original_id or 0)
        if original is not None and original["flags"] & LOADING:
            edit = {k: v for k, v in call.json.items() if k != "flags"}  # the deferral decides
            message = self._edit_message(int(original["id"]), edit, call.files)
        else:
            channel_id = int(call.query.get("thread_id") or interaction.payload["channel_id"])
            message = self._new_message(
                channel_id,
                call.json,
                call.files,
                message_type=DEFAULT_MESSAGE,
                interaction=interaction,
            )
            interaction.followup_ids.append(int(message["id"]))
        return (200, message) if _flag(call.query, "wait") else (204, None)

    async def _get_webhook_msg(
        self, call: _Call, app_id: str, token: str, message_id: str
    ) -> Reply:
        return 200, self.messages[self._webhook_message(app_id, token, message_id)]

    async def _edit_webhook_msg(
        self, call: _Call, app_id: str, token: str, message_id: str
    ) -> Reply:
        resolved = self._webhook_message(app_id, token, message_id)
        return 200, self._edit_message(resolved, call.json or {}, call.files)

    async def _del_webhook_msg(
        self, call: _Call, app_id: str, token: str, message_id: str
    ) -> Reply:
        del self.messages[self._webhook_message(app_id, token, message_id)]
        return 204, None

    async def _create_channel_msg(self, call: _Call, channel_id: str) -> Reply:
        self._channel(channel_id)
        message_type = REPLY_MESSAGE if "message_reference" in call.json else DEFAULT_MESSAGE
        message = self._new_message(
            int(channel_id), call.json, call.files, message_type=message_type
        )
        return 200, message

    async def _edit_channel_msg(self, call: _Call, channel_id: str, message_id: str) -> Reply:
        self._channel_message(channel_id, message_id)
        return 200, self._edit_message(int(message_id), call.json or {}, call.files)

    async def _thread(self, call: _Call, channel_id: str, message_id: str | None = None) -> Reply:
        """Start a thread (from a message: same id as the message) and announce THREAD_CREATE."""
        if self._channel(channel_id)["type"] != 0:
            raise _DiscordError(400, 50024, "Cannot execute action on this channel type")
        if message_id is not None:
            self._channel_message(channel_id, message_id)
        if not 1 <= len(call.json.get("name") or "") <= 100:
            raise _DiscordError(400, 50035, "Invalid Form Body: name must be 1-100 characters")
        thread_id = int(message_id) if message_id is not None else self._snowflake()
        archive_after = call.json.get("auto_archive_duration") or 1440
        thread = {
            "id": str(thread_id),
            "type": call.json.get("type", 11) if message_id is None else 11,
            "guild_id": str(self.guild_id),
            "parent_id": channel_id,
            "owner_id": str(self.bot_user.id),
            "name": call.json["name"],
            "last_message_id": None,
            "rate_limit_per_user": call.json.get("rate_limit_per_user") or 0,
            "message_count": 0,
            "member_count": 1,
            "total_message_sent": 0,
            "flags": 0,
            "thread_metadata": {
                "archived": False,
                "auto_archive_duration": archive_after,
                "archive_timestamp": _now(),
                "locked": False,
                "invitable": call.json.get("invitable", True),
                "create_timestamp": _now(),
            },
            "member": {
                "id": str(thread_id),
                "user_id": str(self.bot_user.id),
                "join_timestamp": _now(),
                "flags": 0,
            },
        }
        self.channels[thread_id] = thread
        if self._session is not None:
            await self._dispatch_to(
                self._session, "THREAD_CREATE", {**thread, "newly_created": True}
            )
        return 201, thread


@contextmanager
def discord_endpoints(fake: FakeDiscord) -> Iterator[None]:
    """Point discord.py's REST base and default gateway at ``fake``; restore them on exit.

    Interaction callbacks and followups use ``discord.http.Route`` too, so this covers them.
    """
    old_base, old_gateway = Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY
    Route.BASE = fake.base_url
    DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(fake.gateway_url)
    try:
        yield
    finally:
        Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = old_base, old_gateway


@asynccontextmanager
async def running_bot(
    fake: FakeDiscord, bot: BotT, *, ready_timeout: float = 5.0
) -> AsyncIterator[BotT]:
    """Run ``bot`` against ``fake`` until it is ready; on exit close it and surface failures.

    The client runs with ``reconnect=False`` so a broken gateway fails instead of retrying.
    On exit, an exception that killed the client task (discord.py drops the bot silently
    when a gateway payload does not parse) is re-raised, and calls the fake could not serve
    fail the test: clear ``fake.unhandled`` in tests that make them on purpose.
    """
    with discord_endpoints(fake):
        client_task: asyncio.Task[None] | None = None
        try:
            await bot.login(fake.token)
            client_task = asyncio.create_task(bot.connect(reconnect=False), name="fake-discord-bot")
            ready = asyncio.create_task(bot.wait_until_ready())
            await asyncio.wait(
                {ready, client_task}, timeout=ready_timeout, return_when=asyncio.FIRST_COMPLETED
            )
            if not ready.done():
                ready.cancel()
                raise RuntimeError(f"bot did not become ready within {ready_timeout}s")
            yield bot
        finally:
            await bot.close()
            if client_task is not None:
                await asyncio.wait_for(client_task, timeout=5.0)
    if fake.unhandled:
        calls = "\n".join(f"  {r.method} {r.path}: {r.response}" for r in fake.unhandled)
        raise AssertionError(f"the fake Discord could not serve:\n{calls}")
