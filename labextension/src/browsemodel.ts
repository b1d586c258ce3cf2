/**
 * The CS3 file browser's REST client (cs3collab/jupyter/browse.py:
 * /api/cs3collab/received, /shared-by-me, /info) and the pure view models
 * the panel and the File info dialog render: no DOM, no JupyterLab here, so
 * that unit tests run in node.
 */

import { checked as checkedResponse, Fetcher } from './rest';

/** The JSON body of a successful response, else a RestError in the server's words. */
async function checked(response: Response): Promise<any> {
  return (await checkedResponse(response)).json();
}

export type ShareState = 'pending' | 'accepted' | 'declined';
export type ItemType = 'notebook' | 'file' | 'directory';

export interface IPerson {
  id?: string;
  username: string;
  idp: string;
  displayName: string;
  institution?: string;
}

/** One entry of `GET /api/cs3collab/received`. */
export interface IReceivedShare {
  id: string;
  kind: 'user' | 'federated';
  state: ShareState;
  name: string;
  type: ItemType;
  /** The contents path under "Shared with me/" once accepted, else null. */
  path: string | null;
  owner: IPerson | null;
  role: 'viewer' | 'editor';
  size: number | null;
  mtime: string | null;
  shared: string | null;
}

/** One entry of `GET /api/cs3collab/shared-by-me`. */
export interface ISentShare {
  id: string;
  kind: 'user' | 'group' | 'federated';
  /** The contents path of the shared file in My files, or null if not under the home. */
  path: string | null;
  name: string;
  grantee: IPerson;
  role: 'viewer' | 'editor';
  created: string | null;
}

/** `GET /api/cs3collab/info?path=`. */
export interface IFileInfo {
  path: string;
  name: string;
  type: ItemType;
  owner: IPerson | null;
  size: number | null;
  mtime: string | null;
  permissions: { role: 'owner' | 'editor' | 'viewer'; can: string[] };
  lock: null | {
    app: string;
    /** The person the CS3 lock names, with their institution; null when it names nobody we can tell. */
    holder: { displayName: string; username: string; idp?: string } | null;
    expires: string | null;
  };
  shares: { id?: string; kind: string; grantee: IPerson; role: string }[] | null;
  versions: number | null;
  resourceId: string | null;
}

/** A REST error with the server's message (APIHandler's JSON `message`). */
/** The browser's routes on the user's own Jupyter server. */
export class BrowseClient {
  constructor(private readonly fetcher: Fetcher) {}

  async received(): Promise<IReceivedShare[]> {
    return (await checked(await this.fetcher('api/cs3collab/received'))).shares;
  }

  /** Accept or decline; the updated entry (its `path` set once accepted). */
  async setState(share: Pick<IReceivedShare, 'kind' | 'id'>, state: 'accepted' | 'declined'): Promise<IReceivedShare> {
    const url = `api/cs3collab/received/${encodeURIComponent(share.kind)}/${encodeURIComponent(share.id)}`;
    return checked(await this.fetcher(url, { method: 'POST', body: JSON.stringify({ state }) }));
  }

  async sharedByMe(): Promise<ISentShare[]> {
    return (await checked(await this.fetcher('api/cs3collab/shared-by-me'))).shares;
  }

  async info(path: string): Promise<IFileInfo> {
    return checked(await this.fetcher(`api/cs3collab/info?${new URLSearchParams({ path })}`));
  }
}

// -- formatting ---------------------------------------------------------------------

const UNITS = ['B', 'KB', 'MB', 'GB', 'TB'];

/** "812 B", "2.1 KB", "14 MB" (powers of 1024, as JupyterLab's file browser). */
export function formatSize(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined || bytes < 0) {
    return '';
  }
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  const shown = unit === 0 || value >= 10 ? Math.round(value).toString() : value.toFixed(1);
  return `${shown} ${UNITS[unit]}`;
}

/** "2026-11-25 13:05" in the browser's time zone; "" for none. */
export function formatDate(iso: string | null | undefined): string {
  if (!iso) {
    return '';
  }
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) {
    return '';
  }
  const pad = (n: number) => String(n).padStart(2, '0');
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
    `${pad(date.getHours())}:${pad(date.getMinutes())}`
  );
}

/** "Albert Einstein (cernbox.test)": who, and from which institution. */
export function personLabel(person: IPerson | null | undefined): string {
  if (!person) {
    return 'unknown';
  }
  const name = person.displayName || person.username;
  const where = person.institution || person.idp;
  return where ? `${name} (${where})` : name;
}

/**
 * Each person's label, `personLabel`'s "Marie Curie (cesnet.test)", except
 * where two different people would read the same: those show their full
 * address, "Marie Curie (marie@cesnet.test)".
 */
export function distinctLabels(people: IPerson[]): string[] {
  const address = (p: IPerson) => (p.idp ? `${p.username}@${p.idp}` : p.username);
  const labels = people.map(personLabel);
  return people.map((person, i) =>
    labels.some((label, j) => label === labels[i] && address(people[j]) !== address(person))
      ? `${person.displayName || person.username} (${address(person)})`
      : labels[i]
  );
}

// -- view models ---------------------------------------------------------------------

export interface IReceivedRow {
  key: string;
  share: IReceivedShare;
  /** "from Albert Einstein (cernbox.test)" */
  from: string;
  /** "editor · 2.1 KB · modified 2026-11-25 13:05" */
  details: string;
  /** What the row offers: pending → accept and decline; accepted → open; declined → accept. */
  actions: ('accept' | 'decline' | 'open')[];
}

const STATE_ORDER: Record<ShareState, number> = { pending: 0, accepted: 1, declined: 2 };

/** The "Shared with me" rows: pending ones first (to act on), then accepted,
 * then declined; newest first within each. */
export function receivedRows(shares: IReceivedShare[]): IReceivedRow[] {
  const sorted = [...shares].sort(
    (a, b) => STATE_ORDER[a.state] - STATE_ORDER[b.state] || (b.shared ?? '').localeCompare(a.shared ?? '')
  );
  return sorted.map(share => {
    const details: string[] = [share.role];
    if (share.kind === 'federated') {
      details.push('federated');
    }
    const size = share.type === 'directory' ? '' : formatSize(share.size);
    if (size) {
      details.push(size);
    }
    const modified = formatDate(share.mtime);
    if (modified) {
      details.push(`modified ${modified}`);
    }
    if (share.state === 'declined') {
      details.push('declined');
    }
    // a declined share can still be accepted (the panel keeps it in a collapsed "Declined" section)
    const actions: IReceivedRow['actions'] =
      share.state === 'pending'
        ? ['accept', 'decline']
        : share.state === 'declined'
          ? ['accept']
          : share.path
            ? ['open']
            : [];
    return {
      key: `${share.kind}/${share.id}`,
      share,
      from: `from ${personLabel(share.owner)}`,
      details: details.join(' · '),
      actions
    };
  });
}

export interface ISentRow {
  key: string;
  share: ISentShare;
  /** "with Marie Curie (cernbox.test)" or "with group physics-lovers" */
  to: string;
  /** "editor · shared 2026-11-25 13:05" */
  details: string;
  /** Whether clicking the name opens the file (it is in My files). */
  openable: boolean;
}

/** The "Shared by me" rows, by file name then grantee. */
export function sentRows(shares: ISentShare[]): ISentRow[] {
  const sorted = [...shares].sort(
    (a, b) => a.name.localeCompare(b.name) || personLabel(a.grantee).localeCompare(personLabel(b.grantee))
  );
  return sorted.map(share => {
    const to = share.kind === 'group' ? `with group ${share.grantee.displayName}` : `with ${personLabel(share.grantee)}`;
    const created = formatDate(share.created);
    const details: string[] = [share.role];
    if (share.kind === 'federated') {
      details.push('federated');
    }
    if (created) {
      details.push(`shared ${created}`);
    }
    return { key: `${share.kind}/${share.id}`, share, to, details: details.join(' · '), openable: share.path !== null };
  });
}

export type InfoField = 'owner' | 'size' | 'modified' | 'permissions' | 'lock' | 'shares' | 'versions';

export interface IInfoRow {
  field: InfoField;
  label: string;
  value: string;
}

const ROLE_LABELS = { owner: 'Owner', editor: 'Editor', viewer: 'Viewer' };

/**
 * "Locked by Collabora Online (Albert Einstein, cernbox.test)", "Locked by
 * cs3collab (live editing) · Albert Einstein (cernbox.test)" (a live room's
 * lock, held for the people editing it), "Not locked". The same words at the
 * file's site and at another one (there the holder comes from the sharing
 * site's service).
 */
export function lockLabel(lock: IFileInfo['lock']): string {
  if (!lock) {
    return 'Not locked';
  }
  const holder = lock.holder;
  const name = holder ? holder.displayName || holder.username : '';
  let text: string;
  if (lock.app === 'cs3collab') {
    text = 'Locked by cs3collab (live editing)';
    if (holder) {
      text += ` · ${holder.idp ? `${name} (${holder.idp})` : name}`;
    }
  } else {
    text = `Locked by ${lock.app || 'another application'}`;
    if (holder) {
      text += ` (${holder.idp ? `${name}, ${holder.idp}` : name})`;
    }
  }
  const until = formatDate(lock.expires);
  if (until) {
    text += ` · until ${until}`;
  }
  return text;
}

/** The File info dialog's rows, in the order they are shown. */
export function infoRows(info: IFileInfo): IInfoRow[] {
  const rows: IInfoRow[] = [{ field: 'owner', label: 'Owner', value: personLabel(info.owner) }];
  if (info.type !== 'directory') {
    rows.push({ field: 'size', label: 'Size', value: formatSize(info.size) || 'unknown' });
  }
  rows.push({ field: 'modified', label: 'Modified', value: formatDate(info.mtime) || 'unknown' });
  const role = ROLE_LABELS[info.permissions.role] ?? info.permissions.role;
  const can = info.permissions.can.length ? `: ${info.permissions.can.join(', ')}` : '';
  rows.push({ field: 'permissions', label: 'Your permissions', value: `${role}${can}` });
  if (info.type !== 'directory') {
    rows.push({ field: 'lock', label: 'Lock', value: lockLabel(info.lock) });
  }
  let shares: string;
  if (info.shares === null) {
    shares = 'Visible to the owner only';
  } else if (!info.shares.length) {
    shares = 'Not shared';
  } else {
    const people = info.owner ? [info.owner, ...info.shares.map(s => s.grantee)] : info.shares.map(s => s.grantee);
    const labels = distinctLabels(people).slice(info.owner ? 1 : 0);
    shares = info.shares
      .map((s, i) => `${s.kind === 'group' ? `group ${s.grantee.displayName}` : labels[i]}: ${s.role}`)
      .join(', ');
  }
  rows.push({ field: 'shares', label: 'Shared with', value: shares });
  if (info.type !== 'directory') {
    const n = info.versions;
    const versions =
      n === null ? 'not available' : n === 0 ? 'No earlier versions' : n === 1 ? '1 version' : `${n} versions`;
    rows.push({ field: 'versions', label: 'Versions', value: versions });
  }
  return rows;
}
