/**
 * Fuzz target "mgmt-server": the management socket end to end — bytes on a real unix
 * socket → FrameDecoder → decodeMgmtRequest → the request handlers (src/mgmt/server.ts) →
 * the real flow service (src/daemon/flows.ts: parser, table, packet-out) behind the test
 * fake (test/helpers/fake-mgmt.ts).
 *
 * Requests are generated field by field from lime.proto with flow texts, action lists and
 * frames from the other targets' generators. Every request gets its reply (same id) and
 * the reply is either a result or an error the request deserves (BAD_REQUEST, NOT_FOUND,
 * ALREADY_EXISTS) — never FAILED from an unexpected exception ("management request
 * failed" in the log), never a reply that cannot be encoded. Garbage on a connection
 * (random bytes, mutated frames) closes that connection at worst: the server keeps
 * answering on a new one.
 *
 * Findings are saved in test/fixtures/fuzz-regression/mgmt-server/*.json ({ "comment",
 * "request": a MgmtRequest in protobufjs fromObject form }) and replayed here.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManagementServer, type LogLevel } from '../../src/mgmt/server.js';
import { encodeFrame } from '../../src/proto/framing.js';
import { MgmtRequestType, PROTOCOL_VERSION, encodeMessage, type MgmtReply, type UnknownBody } from '../../src/proto/schema.js';
import { FakeManagementService, RawClient, portInfo, tempDir } from '../helpers/fake-mgmt.js';
import { GOLDEN_FLOWS, actionsText, grammarFlow, mutatedText } from './arbitraries/flows.js';
import { structuredFrame } from './arbitraries/frames.js';
import { mutated } from './arbitraries/mutate.js';
import { objectOf } from './arbitraries/proto.js';
import { fuzzCheckAsync, testTimeout, type Budget } from './budget.js';
import { jsonRegressions } from './regressions.js';

const field = (name: string) => MgmtRequestType.fields[name]!.resolvedType as Parameters<typeof objectOf>[0];

/**
 * Flow texts as a client can send them: protobuf strings are UTF-8, so a lone surrogate
 * (which the flow-syntax target does try) becomes U+FFFD, as Node's encoding of argv and
 * files makes it. (Unencodable strings are the garbage test's business.)
 */
const flowTextLine = fc
  .oneof(grammarFlow, fc.constantFrom(...GOLDEN_FLOWS), mutatedText(fc.constantFrom(...GOLDEN_FLOWS)))
  .map((s) => Buffer.from(s, 'utf8').toString('utf8'));
const flowText = fc.record({
  flows: fc.array(flowTextLine, { maxLength: 4 }),
  lines: fc.array(fc.nat({ max: 100 }), { maxLength: 4 }),
  source: fc.constantFrom('', 'flows.txt'),
  more: fc.oneof({ weight: 4, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
});
const portName = fc.constantFrom('vm1', 'vm2', 'vm3', 'none', 'controller', 'local', '', '1', '65535', 'constructor');

/** One request body (not monitor/capture: those turn the connection into a stream). */
const body: fc.Arbitrary<Record<string, unknown>> = fc.oneof(
  fc.constantFrom('show', 'fdb_show', 'peer_show', 'sync_barrier', 'reload').map((b) => ({ [b]: {} })),
  fc.record({ command: fc.constantFrom('ADD', 'MODIFY', 'MODIFY_STRICT', 'DELETE', 'DELETE_STRICT', 7), text: flowText }).map((r) => ({ flow_mods: r })),
  fc.record({ text: flowText, dry_run: fc.boolean() }).map((r) => ({ replace_flows: r })),
  fc.record({ match: fc.oneof(fc.constant(''), flowTextLine), strict: fc.boolean(), site: fc.constantFrom('', 'both', 'local', 'peer', 'mars') }).map((r) => ({ dump_flows: r })),
  flowTextLine.map((packet) => ({ trace: { packet } })),
  fc.record({ in_port: portName, actions: actionsText, packet: fc.oneof(structuredFrame, fc.uint8Array({ maxLength: 20 })) }).map((r) => ({ packet_out: r })),
  fc.record({ name: portName, type: fc.constantFrom('tap', 'system', 'gre', ''), device: fc.option(portName, { nil: undefined }), mtu: fc.option(fc.nat(), { nil: undefined }), mac: fc.option(fc.constantFrom('02:00:00:00:00:09', 'zz'), { nil: undefined }) }).map((r) => ({ add_port: r })),
  portName.map((name) => ({ del_port: { name } })),
  objectOf(field('migrate')).map((r) => ({ migrate: r })),
);

const request = fc.tuple(fc.oneof({ weight: 9, arbitrary: fc.constant(PROTOCOL_VERSION) }, { weight: 1, arbitrary: fc.nat() }), body).map(([version, b]) => ({ version, ...b }));

/** What must never show up in the server's log. */
const BUG_LOGS = ['management request failed', 'cannot encode management reply'];

let tmp: ReturnType<typeof tempDir>;
let service: FakeManagementService;
let server: ManagementServer;
const bugs: string[] = [];
/** Why the server closed connections (a requests case must not see any). */
const closes: string[] = [];
let nextId = 1;

beforeAll(async () => {
  tmp = tempDir();
  service = new FakeManagementService();
  service.traceResult = (key) => ({ steps: [], actions: ['drop'], rules: [], finalKey: key });
  server = new ManagementServer({
    path: `${tmp.dir}/limed.sock`,
    service,
    log: (level: LogLevel, msg: string, fields?: Record<string, unknown>) => {
      if (BUG_LOGS.includes(msg)) bugs.push(`${level} ${msg}: ${JSON.stringify(fields)}`);
      if (msg === 'closing management connection') closes.push(String(fields?.['reason']));
    },
  });
  await server.start();
});
afterAll(async () => {
  await server?.stop();
  tmp?.cleanup();
});

/** Back to the fake's first state, so that a run of thousands of cases stays small. */
function resetService(): void {
  service.ports = [portInfo('vm1', 1), portInfo('vm2', 2, { state: 'down' })];
  service.migration.migration = { phase: 'idle', from: '', to: '', strategy: '', before: [], ended: '' };
  service.flows.flowMods({ command: 'DELETE', text: { flows: [], lines: [], source: '', more: false } });
}

const isFinal = (r: MgmtReply | UnknownBody): boolean =>
  !(r.body === 'dump_flows' && r.dump_flows.more) && !(r.body === 'flow_diff' && r.flow_diff.more);

/** Sends one request object and returns its replies (all parts). */
async function ask(client: RawClient, req: Record<string, unknown>): Promise<Array<MgmtReply | UnknownBody>> {
  const id = nextId++;
  const start = client.replies.length;
  client.writeRaw(encodeFrame(encodeMessage(MgmtRequestType, { ...req, id })));
  for (let n = start + 1; ; n++) {
    const replies = await client.waitReplies(n, 5000);
    if (isFinal(replies[n - 1]!)) {
      const mine = replies.slice(start);
      for (const r of mine) expect(r.id).toBe(id);
      return mine;
    }
  }
}

/** One request on `client`: a reply it deserves, and no sign of a bug in the log. */
async function checkRequest(client: RawClient, req: Record<string, unknown>): Promise<void> {
  const before = bugs.length;
  const replies = await ask(client, req);
  expect(bugs.slice(before), 'unexpected failures logged by the server').toEqual([]);
  const last = replies[replies.length - 1]!;
  if (last.body === 'error') expect(last.error.code, last.error.message).not.toBe('FAILED');
}

const BUDGET = {
  requests: { share: 0.7, cost: 8 },
  garbage: { share: 0.3, cost: 20 },
} satisfies Record<string, Budget>;

describe('fuzz: management socket and its request handlers', () => {
  it('answers every generated request with a result or a deserved error', async () => {
    // One connection per case: a case (and its shrinking) must not depend on the last one.
    await fuzzCheckAsync('mgmt-server/requests', fc.asyncProperty(fc.array(request, { minLength: 1, maxLength: 4 }), async (reqs) => {
      resetService();
      closes.length = 0;
      const client = await RawClient.connect(server.path);
      try {
        for (const req of reqs) {
          await checkRequest(client, req).catch((err: Error) => {
            throw new Error(`${err.message}${closes.length > 0 ? ` (server closed the connection: ${closes.join('; ')})` : ''}`, { cause: err });
          });
        }
      } finally {
        client.close();
      }
    }), BUDGET.requests);
  }, testTimeout(BUDGET.requests));

  it('survives garbage on a connection and keeps serving new ones', async () => {
    const frames = request.map((r) => encodeFrame(encodeMessage(MgmtRequestType, { ...r, id: 1 })));
    const garbage = fc.oneof(fc.uint8Array({ minLength: 1, maxLength: 60 }), mutated(frames, 3));
    await fuzzCheckAsync('mgmt-server/garbage', fc.asyncProperty(garbage, async (bytes) => {
      resetService();
      const bad = await RawClient.connect(server.path);
      bad.writeRaw(bytes);
      bad.socket.end();
      await bad.waitClosed(5000);
      expect(bugs, 'unexpected failures logged by the server').toEqual([]);
      const good = await RawClient.connect(server.path);
      try {
        expect((await ask(good, { version: PROTOCOL_VERSION, show: {} }))[0]!.body).toBe('show');
      } finally {
        good.close();
      }
    }), BUDGET.garbage);
  }, testTimeout(BUDGET.garbage));

  it('replays the saved findings (test/fixtures/fuzz-regression/mgmt-server)', async () => {
    const saved = jsonRegressions<{ request: Record<string, unknown> }>('mgmt-server');
    const client = await RawClient.connect(server.path);
    try {
      for (const { name, input } of saved) {
        resetService();
        await checkRequest(client, input.request).catch((err: Error) => {
          throw new Error(`regression ${name}: ${err.message}`, { cause: err });
        });
      }
    } finally {
      client.close();
    }
    expect(saved.length).toBeGreaterThan(0);
  });
});
