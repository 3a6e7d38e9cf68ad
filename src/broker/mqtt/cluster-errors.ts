/** Errors the MQTT cluster link hands to the broker. */

/** A forwarded message's link to its peer closed before the peer confirmed it (the peer may never have stored it). */
export class PeerLinkLostError extends Error {
  constructor(readonly peer: number) {
    super(`the link to peer broker ${peer} closed before it confirmed a forwarded message`);
    this.name = 'PeerLinkLostError';
  }
}
