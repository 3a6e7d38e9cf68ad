import type { Config } from './schema.js';

export interface PortBinding {
  /** The configuration key that sets this port, e.g. "mqtt.tcp_port". */
  key: string;
  port: number;
}

/** TLS-based listeners only open when a certificate and key are configured. */
export function tlsConfigured(config: Config): boolean {
  return config.tls.cert !== undefined && config.tls.key !== undefined;
}

/**
 * Every port this node will bind, given its roles. The single answer to "which
 * ports does this config use", for the clash check and for the listeners.
 */
export function boundPorts(config: Config): PortBinding[] {
  const out: PortBinding[] = [
    { key: 'grpc_port', port: config.grpc_port },
    { key: 'http_port', port: config.http_port },
  ];
  if (config.prometheus.enable && config.prometheus.port !== undefined) {
    out.push({ key: 'prometheus.port', port: config.prometheus.port });
  }
  if (config.roles.includes('journal')) {
    out.push({ key: 'journal.tcp_port', port: config.journal.tcp_port });
  }
  if (config.roles.includes('broker')) {
    const tls = tlsConfigured(config);
    const candidates: Array<[string, number, boolean]> = [
      ['mqtt.tcp_port', config.mqtt.tcp_port, true],
      ['mqtt.tls_port', config.mqtt.tls_port, tls],
      ['mqtt.ws_port', config.mqtt.ws_port, true],
      ['mqtt.wss_port', config.mqtt.wss_port, tls],
      ['kafka.tcp_port', config.kafka.tcp_port, true],
      ['kafka.sasl_port', config.kafka.sasl_port, true],
      ['kafka.ssl_port', config.kafka.ssl_port, tls],
      ['rocketmq.grpc_port', config.rocketmq.grpc_port, true],
    ];
    for (const [key, port, active] of candidates) {
      if (active && port !== 0) out.push({ key, port });
    }
  }
  return out;
}

/** The journal data-path listener a node advertises in meta (brokers' journal engines connect to it). */
export function journalListeners(config: Config): Array<{ name: string; protocol: string; address: string }> {
  if (!config.roles.includes('journal')) return [];
  return [{ name: 'journal', protocol: 'journal', address: `${config.advertised_host}:${config.journal.tcp_port}` }];
}
