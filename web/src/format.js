// Numbers and times the way people read them.

export function bytes(n) {
  if (!Number.isFinite(n)) return '';
  const units = ['bytes', 'KB', 'MB', 'GB', 'TB'];
  let value = n;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return unit === 0 ? `${value} ${units[0]}` : `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

/** 75 → "1:15", 3725 → "1:02:05". */
export function duration(secs) {
  if (!Number.isFinite(secs)) return '';
  const total = Math.round(secs);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, '0');
  return h ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
}

const relative = typeof Intl !== 'undefined' && Intl.RelativeTimeFormat ? new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' }) : null;

/** "3 minutes ago", "yesterday". */
export function ago(iso) {
  const then = Date.parse(iso);
  if (!Number.isFinite(then)) return '';
  const secs = Math.round((then - Date.now()) / 1000);
  const steps = [
    [60, 'second'],
    [3600, 'minute', 60],
    [86400, 'hour', 3600],
    [604800, 'day', 86400],
    [2629800, 'week', 604800],
    [31557600, 'month', 2629800],
    [Infinity, 'year', 31557600],
  ];
  for (const [limit, unit, size = 1] of steps) {
    if (Math.abs(secs) < limit) {
      const value = Math.round(secs / size);
      return relative ? relative.format(value, unit) : `${Math.abs(value)} ${unit}s ago`;
    }
  }
  return '';
}

export function plural(n, one, many = `${one}s`) {
  return `${n} ${n === 1 ? one : many}`;
}

export function kbps(n) {
  return n >= 1000 ? `${(n / 1000).toFixed(1)} Mbit/s` : `${n} kbit/s`;
}
