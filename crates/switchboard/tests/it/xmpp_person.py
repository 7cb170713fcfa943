#!/usr/bin/python3
"""A person on XMPP, for Switchboard's end-to-end tests: an independent
client (slixmpp) that the test drives with one JSON command per line on
stdin, and that reports what it sees as one JSON event per line on stdout.

    xmpp_person.py JID PASSWORD CA_FILE HOST PORT

Commands: {"join": ROOM, "nick": NICK}, {"say": TEXT, "to": JID,
"type": "chat"|"groupchat"}, {"kick": NICK, "room": ROOM}.
Events: {"event": "online"}, {"event": "joined", "room": ROOM},
{"event": "message", "from", "type", "body", "id", "replace", "thread"},
{"event": "presence", "from", "type"}, {"event": "disconnected"}.
"""

import asyncio
import json
import sys

import slixmpp


def emit(**event):
    print(json.dumps(event), flush=True)


class Person(slixmpp.ClientXMPP):
    def __init__(self, jid, password, ca_file):
        super().__init__(jid, password)
        self.ca_certs = ca_file
        for plugin in ("xep_0030", "xep_0045", "xep_0199"):
            self.register_plugin(plugin)
        self.add_event_handler("session_start", self.on_start)
        self.add_event_handler("message", self.on_message)
        self.add_event_handler("groupchat_presence", self.on_presence)
        self.add_event_handler("disconnected", lambda _: emit(event="disconnected"))

    async def on_start(self, _event):
        self.send_presence()
        emit(event="online")

    def on_message(self, msg):
        replace = msg.xml.find("{urn:xmpp:message-correct:0}replace")
        emit(
            event="message",
            **{
                "from": str(msg["from"]),
                "type": msg["type"],
                "body": msg["body"],
                "id": msg["id"],
                "replace": None if replace is None else replace.get("id"),
                "thread": msg["thread"] or None,
            },
        )

    def on_presence(self, presence):
        emit(event="presence", **{"from": str(presence["from"]), "type": presence["type"]})

    async def command(self, cmd):
        if "join" in cmd:
            await self.plugin["xep_0045"].join_muc_wait(
                slixmpp.JID(cmd["join"]), cmd["nick"], maxstanzas=0, timeout=20
            )
            emit(event="joined", room=cmd["join"])
        elif "say" in cmd:
            self.send_message(mto=cmd["to"], mbody=cmd["say"], mtype=cmd["type"])
        elif "kick" in cmd:
            await self.plugin["xep_0045"].set_role(slixmpp.JID(cmd["room"]), cmd["kick"], "none")


async def main():
    jid, password, ca_file, host, port = sys.argv[1:6]
    person = Person(jid, password, ca_file)
    person.connect(address=(host, int(port)))
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        try:
            await person.command(json.loads(line))
        except Exception as e:  # reported to the test, which decides
            emit(event="error", error=repr(e))
    person.disconnect()


asyncio.run(main())
