/**
 * The topic parser and builders on any input: parsing never throws and only yields ids that are
 * valid and rebuild the same topic; building refuses any id that could add or change a level.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isValidId } from '../lib/ids.js';
import { filterCovers, filterReaches, parseTopic, topics } from './topics.js';
import { params } from '../test/support/property.js';

const idChar = fc.constantFrom(...'abcXYZ019_.-');
const validId = fc.string({ unit: idChar, minLength: 1, maxLength: 64 });
const level = fc.oneof(validId, fc.string({ unit: fc.constantFrom('/', '+', '#', '$', ' ', '\u0000', 'a', '.', '龙'), maxLength: 8 }), fc.string({ maxLength: 70 }));
const topicish = fc.oneof(
  fc.string({ maxLength: 200 }),
  fc.array(level, { maxLength: 5 }).map((parts) => parts.join('/')),
  fc.tuple(fc.constantFrom('telemetry', 'status', 'errors', '$SYS', 'alerts'), fc.array(level, { maxLength: 4 })).map(([head, rest]) => [head, ...rest].join('/')),
);

describe('topics (property)', () => {
  it('parses any string without throwing; a telemetry or status result has valid ids and rebuilds the same topic', () => {
    fc.assert(
      fc.property(topicish, (topic) => {
        const parsed = parseTopic(topic);
        if (parsed.kind === 'telemetry') {
          expect(isValidId(parsed.assetId) && isValidId(parsed.sensorId)).toBe(true);
          expect(topics.telemetry(parsed.assetId, parsed.sensorId)).toBe(topic);
        } else if (parsed.kind === 'status') {
          expect(isValidId(parsed.deviceId)).toBe(true);
          expect(topics.status(parsed.deviceId)).toBe(topic);
        } else {
          expect(parsed).toEqual({ kind: 'other' });
        }
      }),
      params(1000),
    );
  });

  it('round-trips every valid id through the builders and the parser', () => {
    fc.assert(
      fc.property(validId, validId, (asset, sensor) => {
        expect(parseTopic(topics.telemetry(asset, sensor))).toEqual({ kind: 'telemetry', assetId: asset, sensorId: sensor });
        expect(parseTopic(topics.status(asset))).toEqual({ kind: 'status', deviceId: asset });
        expect(topics.errors(asset)).toBe(`errors/${asset}`);
      }),
      params(),
    );
  });

  it('refuses to build a topic from an id that is not valid', () => {
    fc.assert(
      fc.property(
        fc.string({ maxLength: 80 }).filter((s) => !isValidId(s)),
        (bad) => {
          expect(() => topics.telemetry(bad, 's1')).toThrow(/invalid asset id/);
          expect(() => topics.errors(bad)).toThrow(/invalid device id/);
          expect(() => topics.alerts('red', bad)).toThrow(/invalid asset id/);
        },
      ),
      params(),
    );
  });

  it('answers filter questions for any filters without throwing, and a filter always covers itself', () => {
    fc.assert(
      fc.property(topicish, topicish, (a, b) => {
        expect(typeof filterCovers(a, b)).toBe('boolean');
        expect(typeof filterReaches(a, 'errors')).toBe('boolean');
        expect(filterCovers(a, a)).toBe(true);
      }),
      params(),
    );
  });
});
