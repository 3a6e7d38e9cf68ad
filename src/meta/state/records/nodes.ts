/**
 * Cluster members (brokers, journals, meta nodes) and their liveness state.
 *
 * Heartbeats are not replicated (one entry per node per second would swamp the
 * log); the meta leader tracks them in memory and proposes `node.setState` when
 * a node turns suspect or dead, so only transitions cost a log entry.
 */
import type { Role } from '../../../common/config/schema.js';
import type { ListenerInfo } from '../../../common/node-info.js';
import { sortedValues } from '../canonical.js';
import { Fields, checkList, invalid } from '../fields.js';
import { deepFreeze } from '../frozen.js';
import { defineRecord, type ApplyOutput } from '../registry.js';
import { fail, ok } from '../result.js';

// Mirrors the config's roles; `satisfies` keeps the two in step at compile time without a runtime import.
export const NODE_ROLES = ['meta', 'broker', 'journal'] as const satisfies readonly Role[];
export type NodeRole = (typeof NODE_ROLES)[number];

export const NODE_STATES = ['alive', 'suspect', 'dead'] as const;
export type NodeState = (typeof NODE_STATES)[number];

/** A protocol endpoint a node serves, e.g. { name: 'mqtt', protocol: 'mqtt', address: 'h:1883' }. */
export type NodeListener = Readonly<ListenerInfo>;

export interface NodeRecord {
  readonly id: number;
  readonly roles: readonly NodeRole[];
  readonly grpcAddr: string;
  readonly httpAddr?: string;
  readonly listeners: readonly NodeListener[];
  readonly state: NodeState;
  /** When this incarnation registered (a restarted node registers again). */
  readonly registeredAtMs: number;
  readonly lastStateChangeMs: number;
  /** Last heartbeat the leader recorded in the log (at register, or carried by a state change). */
  readonly lastHeartbeatMs: number;
}

export interface NodeRegisterCommand {
  readonly kind: 'node.register';
  readonly nodeId: number;
  readonly roles: readonly NodeRole[];
  readonly grpcAddr: string;
  readonly httpAddr?: string;
  readonly listeners?: readonly NodeListener[];
  readonly nowMs: number;
}

export interface NodeSetStateCommand {
  readonly kind: 'node.setState';
  readonly nodeId: number;
  readonly state: NodeState;
  readonly nowMs: number;
  /** The last heartbeat the leader saw; defaults to nowMs when the node turns alive. */
  readonly lastHeartbeatMs?: number;
}

export interface NodeRemoveCommand {
  readonly kind: 'node.remove';
  readonly nodeId: number;
}

export type NodeCommand = NodeRegisterCommand | NodeSetStateCommand | NodeRemoveCommand;

export type NodeEvent =
  | { readonly type: 'node.registered'; readonly node: NodeRecord; readonly previous?: NodeRecord }
  | { readonly type: 'node.stateChanged'; readonly node: NodeRecord; readonly previous: NodeState }
  | { readonly type: 'node.removed'; readonly node: NodeRecord };

export type NodesState = Map<number, NodeRecord>;

export interface NodesQuery {
  get(nodeId: number): NodeRecord | undefined;
  has(nodeId: number): boolean;
  /** Sorted by id. */
  list(): NodeRecord[];
  /** Nodes with a role, sorted by id; `state` narrows further (e.g. alive brokers for placement). */
  withRole(role: NodeRole, state?: NodeState): NodeRecord[];
}

const ADDR = { max: 255, pattern: /^\S+:\d{1,5}$/, patternText: 'host:port' };

function checkRoles(f: Fields, key: string): NodeRole[] {
  const roles = f.list(key, (v, w) => checkRole(v, w), { min: 1, max: NODE_ROLES.length });
  if (new Set(roles).size !== roles.length) return invalid(`${f.where}: '${key}' lists a role twice`);
  return roles;
}

function checkRole(raw: unknown, where: string): NodeRole {
  const found = NODE_ROLES.find((r) => r === raw);
  return found ?? invalid(`${where}: must be one of ${NODE_ROLES.join(', ')}`);
}

function checkListener(raw: unknown, where: string): NodeListener {
  const f = Fields.of(raw, where);
  return { name: f.str('name', { max: 64 }), protocol: f.str('protocol', { max: 64 }), address: f.str('address', ADDR) };
}

function checkListeners(raw: unknown, where: string): NodeListener[] {
  return checkList(raw, where, checkListener, { max: 64 });
}

function parseNode(raw: unknown, where: string): NodeRecord {
  const f = Fields.of(raw, where);
  const httpAddr = f.optStr('httpAddr', ADDR);
  return deepFreeze({
    id: f.nodeId('id'),
    roles: checkRoles(f, 'roles'),
    grpcAddr: f.str('grpcAddr', ADDR),
    ...(httpAddr !== undefined ? { httpAddr } : {}),
    listeners: checkListeners(f.raw('listeners'), `${where}.listeners`),
    state: f.oneOf('state', NODE_STATES),
    registeredAtMs: f.time('registeredAtMs'),
    lastStateChangeMs: f.time('lastStateChangeMs'),
    lastHeartbeatMs: f.time('lastHeartbeatMs'),
  });
}

function validate(raw: unknown): NodeCommand {
  const f = Fields.of(raw, 'node command');
  const kind = f.oneOf('kind', ['node.register', 'node.setState', 'node.remove'] as const);
  const g = Fields.of(raw, kind);
  switch (kind) {
    case 'node.register': {
      const httpAddr = g.optStr('httpAddr', ADDR);
      const listeners = g.has('listeners') ? checkListeners(g.raw('listeners'), `${kind}: 'listeners'`) : undefined;
      return {
        kind,
        nodeId: g.nodeId('nodeId'),
        roles: checkRoles(g, 'roles'),
        grpcAddr: g.str('grpcAddr', ADDR),
        ...(httpAddr !== undefined ? { httpAddr } : {}),
        ...(listeners !== undefined ? { listeners } : {}),
        nowMs: g.time('nowMs'),
      };
    }
    case 'node.setState': {
      const lastHeartbeatMs = g.optInt('lastHeartbeatMs', { min: 0 });
      return {
        kind,
        nodeId: g.nodeId('nodeId'),
        state: g.oneOf('state', NODE_STATES),
        nowMs: g.time('nowMs'),
        ...(lastHeartbeatMs !== undefined ? { lastHeartbeatMs } : {}),
      };
    }
    case 'node.remove':
      return { kind, nodeId: g.nodeId('nodeId') };
  }
}

function apply(nodes: NodesState, cmd: NodeCommand): ApplyOutput<NodeEvent> {
  switch (cmd.kind) {
    case 'node.register': {
      // Re-registering (a restart, an address change) replaces the record: it is a new incarnation.
      const previous = nodes.get(cmd.nodeId);
      const node: NodeRecord = deepFreeze({
        id: cmd.nodeId,
        roles: [...cmd.roles],
        grpcAddr: cmd.grpcAddr,
        ...(cmd.httpAddr !== undefined ? { httpAddr: cmd.httpAddr } : {}),
        listeners: (cmd.listeners ?? []).map((l) => ({ ...l })),
        state: 'alive',
        registeredAtMs: cmd.nowMs,
        lastStateChangeMs: cmd.nowMs,
        lastHeartbeatMs: cmd.nowMs,
      });
      nodes.set(node.id, node);
      return { result: ok(node), events: [{ type: 'node.registered', node, ...(previous ? { previous } : {}) }] };
    }
    case 'node.setState': {
      const current = nodes.get(cmd.nodeId);
      if (!current) return { result: fail('not_found', `node ${cmd.nodeId} is not registered`), events: [] };
      const lastHeartbeatMs = cmd.lastHeartbeatMs ?? (cmd.state === 'alive' ? cmd.nowMs : current.lastHeartbeatMs);
      if (current.state === cmd.state && lastHeartbeatMs === current.lastHeartbeatMs) return { result: ok(current), events: [] };
      const node: NodeRecord = deepFreeze({
        ...current,
        state: cmd.state,
        lastStateChangeMs: current.state === cmd.state ? current.lastStateChangeMs : cmd.nowMs,
        lastHeartbeatMs,
      });
      nodes.set(node.id, node);
      // Only a real transition is an event; a heartbeat-only refresh is not news to watchers.
      const events: NodeEvent[] = current.state === cmd.state ? [] : [{ type: 'node.stateChanged', node, previous: current.state }];
      return { result: ok(node), events };
    }
    case 'node.remove': {
      const node = nodes.get(cmd.nodeId);
      if (!node) return { result: fail('not_found', `node ${cmd.nodeId} is not registered`), events: [] };
      nodes.delete(cmd.nodeId);
      return { result: ok(node), events: [{ type: 'node.removed', node }] };
    }
  }
}

export const nodesRecord = defineRecord({
  name: 'nodes',
  commands: ['node.register', 'node.setState', 'node.remove'],
  initial: (): NodesState => new Map(),
  validate,
  apply,
  snapshot: (nodes: NodesState) => sortedValues(nodes).map((n) => ({ ...n, roles: [...n.roles], listeners: n.listeners.map((l) => ({ ...l })) })),
  restore(json: unknown): NodesState {
    const list = checkList(json, 'nodes', parseNode);
    const nodes: NodesState = new Map();
    for (const n of list) {
      if (nodes.has(n.id)) invalid(`nodes: node ${n.id} appears twice`);
      nodes.set(n.id, n);
    }
    return nodes;
  },
  query: (read: () => NodesState): NodesQuery => ({
    get: (id) => read().get(id),
    has: (id) => read().has(id),
    list: () => sortedValues(read()),
    withRole: (role, state) => sortedValues(read()).filter((n) => n.roles.includes(role) && (state === undefined || n.state === state)),
  }),
});
