/** The devices: their connection status, when each was last seen, and the assets it reports for. */
import { useEffect, useState } from 'preact/hooks';
import { api } from '../api';
import { ErrorMessage } from '../components/error-message';
import { formatTime, t } from '../i18n';
import type { Device } from '../types';

const STATUSES = new Set(['online', 'offline', 'unknown']);

export function DevicesPage() {
  const [devices, setDevices] = useState<Device[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    api<{ devices: Device[] }>('GET', '/api/v1/devices').then((d) => setDevices(d.devices), setError);
  }, []);
  if (!devices) return <section>{error ? <ErrorMessage error={error} /> : <div class="loading" />}</section>;
  return (
    <section>
      <h2>{t('devices.title')}</h2>
      {devices.length === 0 && <p class="muted">{t('devices.none')}</p>}
      {devices.length > 0 && (
        <table class="list" data-testid="devices">
          <thead>
            <tr>
              <th>{t('devices.id')}</th>
              <th>{t('devices.status')}</th>
              <th>{t('devices.last_seen')}</th>
              <th>{t('devices.assets')}</th>
            </tr>
          </thead>
          <tbody>
            {devices.map((d) => {
              const status = STATUSES.has(d.status) ? d.status : 'unknown';
              return (
                <tr data-testid="device-row" data-device-id={d.id}>
                  <td>{d.id}</td>
                  <td class={`device-${status}`} data-testid="device-status">
                    ● {t(`devices.${status}`)}
                  </td>
                  <td class="small" title={d.last_seen ?? ''} data-testid="device-last-seen">
                    {formatTime(d.last_seen)}
                  </td>
                  <td data-testid="device-assets">{d.assets.join(', ')}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </section>
  );
}
