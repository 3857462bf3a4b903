/** What a simulation run reports: progress while it runs, the summary at the end, both as text. */

export interface SimulationProgress {
  elapsedMs: number;
  sent: number;
  acknowledged: number;
  errors: number;
  /** Readings published and not yet acknowledged. */
  inflight: number;
  connected: number;
  connections: number;
  /** Timestamp of the latest reading published so far (simulated time). */
  simulatedTs: number | undefined;
}

export interface RejectedMessage {
  device: string;
  topic: string;
  reason: string;
  detail?: string;
}

export interface SimulationSummary {
  scenario: string;
  /** The broker the run published to. */
  url: string;
  /** Readings published (QoS 1). */
  sent: number;
  /** Readings the broker acknowledged (PUBACK). */
  acknowledged: number;
  /** Everything that did not go through: failed + unacknowledged + unsent + connectFailures + refused. */
  errors: number;
  /** Readings whose publish failed. */
  failed: number;
  /** Readings still waiting for PUBACK when the run ended. */
  unacknowledged: number;
  /** Readings of the run (one per sensor and step) never published: the link was not up in time. */
  unsent: number;
  /** Connection attempts that ended before the broker answered (nothing listening, network, timeout). */
  connectFailures: number;
  /** Connections the broker never accepted during the run. */
  neverConnected: number;
  /** Rejections reported by the platform on errors/<device> (the first maxRejectedKept). */
  rejected: RejectedMessage[];
  rejectedTotal: number;
  /** Readings sent per asset id. */
  perAsset: Record<string, number>;
  /** Devices the broker refused at CONNECT. */
  refused: string[];
  /** Devices not simulated (no usable secret). */
  skipped: string[];
  devices: number;
  connections: number;
  speed: number;
  /** Simulated seconds between readings of one sensor. */
  stepSeconds: number;
  /** First and last timestamp published (RFC 3339), if any. */
  simulatedFrom: string | null;
  simulatedTo: string | null;
  durationMs: number;
}

/** The summary as a few human-readable lines, for the command line. */
export function formatSummary(summary: SimulationSummary): string {
  const lines = [
    `scenario ${summary.scenario}: ${summary.sent} readings sent, ${summary.acknowledged} acknowledged, ${summary.errors} errors, ${summary.unacknowledged} unacknowledged, ${summary.rejectedTotal} rejected by the platform (${(summary.durationMs / 1000).toFixed(1)} s)`,
    `  ${summary.devices} devices on ${summary.connections} connections; speed ${summary.speed}×, a reading every ${summary.stepSeconds} simulated s per sensor; simulated ${summary.simulatedFrom ?? '-'} … ${summary.simulatedTo ?? '-'}`,
  ];
  if (summary.errors > 0) {
    const parts = [
      [summary.failed, 'reading', 'readings', 'failed to publish'],
      [summary.unacknowledged, 'reading', 'readings', 'published but not acknowledged'],
      [summary.unsent, 'reading', 'readings', 'never sent'],
      [summary.connectFailures, 'failed connection attempt', 'failed connection attempts', ''],
      [summary.refused.length, 'device', 'devices', 'refused by the broker'],
    ] as const;
    const counted = parts.filter(([n]) => n > 0).map(([n, one, many, what]) => `${n} ${n === 1 ? one : many}${what ? ` ${what}` : ''}`);
    lines.push(`  errors: ${counted.join(', ')}`);
  }
  if (summary.acknowledged === 0 && summary.errors > 0) lines.unshift(nothingDelivered(summary));
  const perAsset = Object.entries(summary.perAsset);
  if (perAsset.length <= 20) for (const [asset, n] of perAsset) lines.push(`  ${asset}: ${n} readings`);
  if (summary.refused.length > 0) lines.push(`refused by the broker: ${summary.refused.join(', ')}`);
  if (summary.skipped.length > 0) lines.push(`skipped (no secret): ${summary.skipped.join(', ')}`);
  const reasons = new Map<string, number>();
  for (const r of summary.rejected) reasons.set(r.reason, (reasons.get(r.reason) ?? 0) + 1);
  for (const [reason, n] of reasons) lines.push(`  rejected ${reason}: ${n}`);
  return lines.join('\n');
}

/** Why a run delivered nothing, as far as the simulators can tell. */
function nothingDelivered(summary: SimulationSummary): string {
  const { url, connections, neverConnected, refused } = summary;
  if (neverConnected < connections) return `nothing was delivered: connected to ${url}, but no reading was acknowledged`;
  if (refused.length > 0) return `nothing was delivered: the broker at ${url} accepted no connection (refused: ${refused.join(', ')})`;
  return `nothing was delivered: none of the ${connections} connections to ${url} succeeded (is the platform running and listening there?)`;
}

/** One progress line for a terminal: elapsed, counts, rate since the previous line. */
export function formatProgress(p: SimulationProgress, previous: SimulationProgress | undefined): string {
  const dt = previous ? (p.elapsedMs - previous.elapsedMs) / 1000 : p.elapsedMs / 1000;
  const rate = dt > 0 ? Math.round((p.sent - (previous?.sent ?? 0)) / dt) : 0;
  const sim = p.simulatedTs === undefined ? '' : `  at ${new Date(p.simulatedTs).toISOString().slice(0, 19)}Z`;
  return `${(p.elapsedMs / 1000).toFixed(0).padStart(5)} s  sent ${p.sent}  acked ${p.acknowledged}  errors ${p.errors}  in flight ${p.inflight}  ${rate}/s  connected ${p.connected}/${p.connections}${sim}`;
}
