/**
 * Sparkplug B topics (namespace spBv1.0): parsed and built here only.
 *   spBv1.0/{group}/{NBIRTH|NDEATH|NDATA|NCMD}/{edge}
 *   spBv1.0/{group}/{DBIRTH|DDEATH|DDATA|DCMD}/{edge}/{device}
 *   spBv1.0/STATE/{host_id}
 */
import { SPARKPLUG_ID } from './config.js';

export const NAMESPACE = 'spBv1.0';

export const NODE_TYPES = ['NBIRTH', 'NDEATH', 'NDATA', 'NCMD'] as const;
export const DEVICE_TYPES = ['DBIRTH', 'DDEATH', 'DDATA', 'DCMD'] as const;
export type SparkplugMessageType = (typeof NODE_TYPES)[number] | (typeof DEVICE_TYPES)[number];

export interface SparkplugTopic {
  group: string;
  type: SparkplugMessageType;
  edge: string;
  /** Set for D* messages. */
  device?: string;
}

const ID = SPARKPLUG_ID.source.slice(1, -1);
const NODE = new RegExp(`^spBv1\\.0/(${ID})/(NBIRTH|NDEATH|NDATA|NCMD)/(${ID})$`);
const DEVICE = new RegExp(`^spBv1\\.0/(${ID})/(DBIRTH|DDEATH|DDATA|DCMD)/(${ID})/(${ID})$`);

/** Is this a topic of the Sparkplug B namespace (well formed or not)? */
export function isSparkplugTopic(topic: string): boolean {
  return topic.startsWith(`${NAMESPACE}/`);
}

/** A node or device message topic; undefined when the topic is not one (STATE, malformed, other ids). */
export function parseSparkplugTopic(topic: string): SparkplugTopic | undefined {
  let m = NODE.exec(topic);
  if (m) return { group: m[1]!, type: m[2] as SparkplugMessageType, edge: m[3]! };
  m = DEVICE.exec(topic);
  if (m) return { group: m[1]!, type: m[2] as SparkplugMessageType, edge: m[3]!, device: m[4]! };
  return undefined;
}

function checkId(id: string, what: string): string {
  if (!SPARKPLUG_ID.test(id)) throw new Error(`invalid Sparkplug ${what} for a topic: ${JSON.stringify(id)}`);
  return id;
}

export const sparkplugTopics = {
  state: (hostId: string) => `${NAMESPACE}/STATE/${checkId(hostId, 'host id')}`,
  /** Every message of one edge node and its devices (an external broker's subscription). */
  nodeFilter: (group: string, edge: string) => `${NAMESPACE}/${checkId(group, 'group id')}/+/${checkId(edge, 'edge node id')}/#`,
  ncmd: (group: string, edge: string) => `${NAMESPACE}/${checkId(group, 'group id')}/NCMD/${checkId(edge, 'edge node id')}`,
};

/** Filters a node may subscribe to: its own commands and host application states. */
export function nodeSubscriptions(group: string, edge: string): string[] {
  return [`${NAMESPACE}/${group}/NCMD/${edge}`, `${NAMESPACE}/${group}/DCMD/${edge}/+`, `${NAMESPACE}/STATE/+`];
}
