/** What every Watchpost dashboard has around its panels: metadata, template variables, annotations. */
import { LEVELS } from '../lib/levels.js';
import { INFLUX_DS, type Json } from './panels.js';

export const SCHEMA_VERSION = 39;

/** Template variables; `type` restricts them to the assets of one type. */
export function variables(type?: string, extra: Json[] = []): Json {
  const typeFilter = type ? `"asset_type" = '${type}' AND ` : '';
  const variable = (name: string, label: string, query: string, refresh: number): Json => ({
    name,
    label,
    type: 'query',
    datasource: INFLUX_DS,
    query,
    definition: query,
    refresh,
    multi: true,
    includeAll: true,
    allValue: '.*',
    sort: 1,
    current: { selected: true, text: ['All'], value: ['$__all'] },
    options: [],
    hide: 0,
    regex: '',
    skipUrlSync: false,
  });
  return {
    list: [
      variable('street', '街道 Street', type ? `SHOW TAG VALUES WITH KEY = "street" WHERE "asset_type" = '${type}'` : 'SHOW TAG VALUES WITH KEY = "street"', 1),
      variable('asset', '设施 Asset', `SHOW TAG VALUES WITH KEY = "asset_id" WHERE ${typeFilter}"street" =~ /^$street$/`, 2),
      variable('sensor', '传感器 Sensor', `SHOW TAG VALUES WITH KEY = "sensor_id" WHERE ${typeFilter}"asset_id" =~ /^$asset$/`, 2),
      ...extra,
    ],
  };
}

const ALERT_ANNOTATION_QUERY = `SELECT "message", "value", "level", "event", "rule_id", "asset_id" FROM "alert_events" WHERE "asset_id" =~ /^$asset$/ AND $timeFilter`;

function annotations(): Json {
  return {
    list: [
      { builtIn: 1, datasource: { type: 'grafana', uid: '-- Grafana --' }, enable: true, hide: true, iconColor: 'rgba(0, 211, 255, 1)', name: 'Annotations & Alerts', type: 'dashboard' },
      {
        name: 'Watchpost 预警事件 alert events',
        datasource: INFLUX_DS,
        enable: true,
        hide: false,
        iconColor: 'red',
        query: ALERT_ANNOTATION_QUERY,
        titleColumn: 'rule_id',
        textColumn: 'message',
        tagsColumn: 'level,event,asset_id',
        target: {
          refId: 'Anno',
          query: ALERT_ANNOTATION_QUERY,
          rawQuery: true,
          resultFormat: 'table',
          fromAnnotations: true,
          titleColumn: 'rule_id',
          textColumn: 'message',
          tagsColumn: 'level,event,asset_id',
        },
      },
    ],
  };
}

export function dashboardShell(uid: string, title: string, description: string, tags: string[], panels: Json[], templating: Json, time = 'now-6h'): Json {
  return {
    uid,
    title,
    description,
    tags: ['watchpost', ...tags],
    schemaVersion: SCHEMA_VERSION,
    version: 1,
    editable: true,
    graphTooltip: 1,
    timezone: 'Asia/Shanghai',
    refresh: '10s',
    time: { from: time, to: 'now' },
    timepicker: { refresh_intervals: ['5s', '10s', '30s', '1m', '5m', '15m'] },
    fiscalYearStartMonth: 0,
    liveNow: false,
    weekStart: '',
    links: [{ title: 'Watchpost', type: 'dashboards', tags: ['watchpost'], asDropdown: true, includeVars: true, keepTime: true }],
    annotations: annotations(),
    templating,
    panels,
  };
}

export function levelVariable(): Json {
  return {
    name: 'level',
    label: '级别 Level',
    type: 'custom',
    query: LEVELS.join(','),
    multi: true,
    includeAll: true,
    allValue: '.*',
    current: { selected: true, text: ['All'], value: ['$__all'] },
    options: [],
    hide: 0,
    skipUrlSync: false,
  };
}

export function eventVariable(): Json {
  return {
    name: 'event',
    label: '事件 Event',
    type: 'custom',
    query: 'firing,level_raised,level_dropped,escalated,repeated,acknowledged,resolved,delivery_failed,verified,dismissed,dispatched,on_site,feedback,closed,overdue',
    multi: true,
    includeAll: true,
    allValue: '.*',
    current: { selected: true, text: ['All'], value: ['$__all'] },
    options: [],
    hide: 0,
    skipUrlSync: false,
  };
}
