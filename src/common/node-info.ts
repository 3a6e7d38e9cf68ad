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
