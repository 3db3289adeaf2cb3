// Seed 003's clients as socket.io-client 4.8 runs them, against two Switchboard processes.
// Driven by tests/e2e/test_seed003_over_daphne.py: reads SCENARIO (JSON: urls, path, tokens,
// room), prints one JSON object of what each client saw, exits 0; exits 1 on a time-out.
import { io } from "socket.io-client";

const s = JSON.parse(process.env.SCENARIO);
const result = {};
const deadline = setTimeout(() => {
  console.error(`scenario timed out; so far: ${JSON.stringify(result)}`);
  process.exit(1);
}, 20000);

function open(url, options) {
  const socket = io(`${url}/game`, { path: s.path, reconnection: false, ...options });
  socket.seen = [];
  socket.onAny((event, data, meta) => socket.seen.push({ event, data, meta }));
  return socket;
}

// Resolves with the socket id once connected, or with the connect_error's message and data.
function connected(socket) {
  return new Promise((resolve) => {
    socket.once("connect", () => resolve({ id: socket.id }));
    socket.once("connect_error", (err) => resolve({ error: err.message, data: err.data }));
  });
}

// Waits until every socket saw `count` events named `event` (or `ms` milliseconds pass).
async function settle(sockets, event, count, ms = 3000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (sockets.every((x) => x.seen.filter((e) => e.event === event).length >= count)) return;
    await new Promise((r) => setTimeout(r, 20));
  }
}

const names = (socket, event) => socket.seen.filter((e) => e.event === event);

// One client per token source, in the seed's order: auth wins over ?token=, ?token= over Bearer.
const bearer = { extraHeaders: { Authorization: `Bearer ${s.tokens.carol}` } };
const a = open(s.urls[0], { auth: { token: s.tokens.alice }, query: { token: s.tokens.bob }, ...bearer, transports: ["websocket"] });
const b = open(s.urls[1], { query: { token: s.tokens.bob }, ...bearer }); // long-polling, then the upgrade
const c = open(s.urls[1], { ...bearer, transports: ["websocket"] });
result.connect = await Promise.all([a, b, c].map(connected));

for (const x of [a, b, c]) result[`join_${x === a ? "a" : x === b ? "b" : "c"}`] = await x.emitWithAck("joinRoom", { roomId: s.room });

// A room message from each process reaches every member on both, once.
result.send = await a.emitWithAck("sendToRoom", { roomId: s.room, event: "vote", data: { n: 1 } });
await b.emitWithAck("sendToRoom", { roomId: s.room, event: "move", data: 2, except: true });
await c.emitWithAck("sendToRoom", { roomId: s.room, event: "move", data: 3, except: c.id });
await settle([a, b, c], "vote", 1);
await settle([a], "move", 2);
await settle([b, c], "move", 1);
await new Promise((r) => setTimeout(r, 200)); // room for a duplicate or an excepted copy to show
result.votes = [a, b, c].map((x) => names(x, "vote"));
result.moves = [a, b, c].map((x) => names(x, "move").map((e) => e.meta.from.id).sort((x, y) => x - y));

// Forbidden: announcements take staff publishers only; the ack and the exception event say so.
result.forbidden = await c.emitWithAck("sendToRoom", { roomId: "announcements", event: "news", data: 1 });
await settle([c], "exception", 1);
result.exceptions = names(c, "exception").map((e) => e.data);

// A socket that polls, then upgrades: socket.io-client's default path, with its upgrade probe
// started by hand (engine.io-client's own _probe, `upgrade: false` holding it back) so that the
// room's messages come over polling, during the upgrade, then over the WebSocket. Each message
// is numbered; the test wants every one once, in order, and notes the transport it came over.
// One publisher, so that the room's order is its; 29 events, within the native burst (RATE_BURST 30).
const p = open(s.urls[1], { auth: { token: s.tokens.carol }, transports: ["websocket"] });
const d = open(s.urls[0], { auth: { token: s.tokens.bob }, upgrade: false });
await connected(p);
await p.emitWithAck("joinRoom", { roomId: s.room });
const sequence = [];
d.on("seq", (n) => sequence.push([n, d.io.engine.transport.name]));
result.connect_d = await connected(d);
result.join_d = await d.emitWithAck("joinRoom", { roomId: s.room });
let next = 0;
const burst = (count) => {
  for (let i = 0; i < count; i++) p.emit("sendToRoom", { roomId: s.room, event: "seq", data: next++, except: true });
};
const received = async (count) => {
  const end = Date.now() + 5000;
  while (sequence.length < count && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
};
burst(8);
await received(8);
const upgraded = new Promise((resolve) => d.io.engine.once("upgrade", (transport) => resolve(transport.name)));
burst(14);
await received(11); // the probe while the rest of the burst is on its way
d.io.engine._probe("websocket");
result.upgraded_to = await upgraded;
await received(22);
burst(6);
await received(28);
await new Promise((r) => setTimeout(r, 200)); // room for a duplicate to show
result.sequence = sequence;
result.published = next;

// Refused handshakes: a forged token, none at all.
const forged = open(s.urls[0], { auth: { token: s.tokens.alice.slice(0, -4) + "AAAA" }, transports: ["websocket"] });
const anonymous = open(s.urls[1], {});
result.refused = await Promise.all([forged, anonymous].map(connected));

// Over the 1 MB message limit (and under Daphne's 1 MiB): Engine.IO drops that socket; nobody sees the message.
const closed = new Promise((resolve) => a.once("disconnect", (reason) => resolve(reason)));
a.emit("sendToRoom", { roomId: s.room, event: "big", data: "x".repeat(1_010_000) });
result.too_big = await closed;
await b.emitWithAck("sendToRoom", { roomId: s.room, event: "after", data: 3 });
await settle([c], "after", 1);
result.big_seen = [b, c].map((x) => names(x, "big").length);
result.after_seen = names(c, "after").length;

for (const x of [a, b, c, d, p, forged, anonymous]) x.close();
clearTimeout(deadline);
console.log(JSON.stringify(result));
