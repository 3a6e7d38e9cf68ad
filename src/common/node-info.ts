/** What a node says about itself: on the admin API, over inner gRPC and in robust-ctl. */
export interface ListenerInfo {
  name: string;
  protocol: string;
  address: string;
}

export interface ServiceState {
  name: string;
  ready: boolean;
}

export interface NodeInfo {
  node_id: number;
  cluster_name: string;
  roles: string[];
  version: string;
  uptime_seconds: number;
  advertised_host: string;
  grpc_port: number;
  http_port: number;
  listeners: ListenerInfo[];
  services: ServiceState[];
  ready: boolean;
  started_at_ms: number;
  pid: number;
}

/** One node as seen from another: what `cluster status` shows. */
export interface ClusterMemberView {
  node_id: number;
  grpc_address: string;
  /** "self" for the answering node; "up" when it answered; "unreachable" otherwise. */
  state: 'self' | 'up' | 'unreachable';
  roles: string[];
  version: string | null;
  uptime_seconds: number | null;
  ready: boolean | null;
  error?: string;
}

export interface ClusterView {
  cluster_name: string;
  /** Where the member list comes from; "config" until the meta service publishes the registry. */
  source: 'config' | 'meta';
  answered_by: number;
  nodes: ClusterMemberView[];
}
