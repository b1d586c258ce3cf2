/**
 * Version history: the REST client of the Jupyter server's proxy
 * (cs3collab/jupyter/versions_proxy.py → the service's
 * /api/collaboration/versions/{fileId}) and pure helpers for the panel.
 */

import { checked, Fetcher } from './rest';

/** One entry of `GET .../versions/{fileId}` (docs/architecture.md, "Versions and tags"). */
export interface IVersion {
  key: string;
  etag: string;
  time: number;
  size: number;
  /** `uid` is `opaque id@idp`; `idp` the author's institution (older services leave it out). */
  authors: { uid: string; name: string; idp?: string }[];
  tags: string[];
  current: boolean;
  restored_from?: string | null;
}

export interface IVersionPage {
  versions: IVersion[];
  tags: Record<string, { etag: string; key: string | null }>;
  total: number;
  offset: number;
  limit: number;
}

export interface IRestoreResult {
  restored: string;
  etag: string | null;
  live: boolean;
  saved: boolean;
  changed: boolean;
}

/** `POST /api/cs3collab/diff`'s answer: the version's notebook and nbdime's diff from it to the live one. */
export interface INotebookDiff {
  base: any;
  diff: any[];
}

export const PAGE_SIZE = 20;

/** The versions of one file, by its contents path. */
export class VersionsClient {
  constructor(
    private readonly fetcher: Fetcher,
    readonly path: string
  ) {}

  private fileId: string | null = null;

  /** The room's fileId of the path (asked once; the service's session answer). */
  async resolve(): Promise<string> {
    if (this.fileId === null) {
      const query = new URLSearchParams({ path: this.path, type: 'notebook' });
      const response = await checked(await this.fetcher(`api/cs3collab/file-id?${query}`));
      this.fileId = (await response.json()).fileId as string;
    }
    return this.fileId;
  }

  private async url(...segments: string[]): Promise<string> {
    const id = await this.resolve();
    return ['api/cs3collab/versions', id, ...segments.map(encodeURIComponent)].join('/');
  }

  async list(offset = 0, limit = PAGE_SIZE): Promise<IVersionPage> {
    const response = await checked(await this.fetcher(`${await this.url()}?limit=${limit}&offset=${offset}`));
    return response.json();
  }

  /** A version's content: nbformat JSON of a notebook. */
  async content(key: string): Promise<any> {
    const response = await checked(await this.fetcher(`${await this.url(key)}?type=notebook`));
    return response.json();
  }

  async tag(name: string, key: string): Promise<{ name: string; key: string; etag: string }> {
    const response = await checked(
      await this.fetcher(await this.url('tags'), { method: 'POST', body: JSON.stringify({ name, key }) })
    );
    return response.json();
  }

  async untag(name: string): Promise<void> {
    await checked(await this.fetcher(await this.url('tags', name), { method: 'DELETE' }));
  }

  /**
   * nbdime's diff of version `key` against `current` (the live notebook's
   * nbformat JSON), computed by the Jupyter server (cs3collab/jupyter/diff.py).
   */
  async diff(key: string, current: unknown): Promise<INotebookDiff> {
    const response = await checked(
      await this.fetcher('api/cs3collab/diff', {
        method: 'POST',
        body: JSON.stringify({ path: this.path, version: key, current })
      })
    );
    return response.json();
  }

  async restore(key: string): Promise<IRestoreResult> {
    const response = await checked(await this.fetcher(await this.url(key, 'restore'), { method: 'POST' }));
    return response.json();
  }
}

/** The server's largest page (`limit`, cs3collab/service/versions.py). */
export const MAX_PAGE = 500;

/**
 * The first page a refresh asks for: what the panel shows now and a page
 * more, since saves since then add versions at the head and would push the
 * entries already scrolled to off the end.
 */
export function refreshLimit(shown: IVersion[]): number {
  return Math.min(MAX_PAGE, Math.max(PAGE_SIZE, shown.length + PAGE_SIZE));
}

/**
 * What a refresh shows: the new first page down to the oldest version shown
 * before (nothing the reader had loaded goes away), or one page when that
 * version is gone (restored) or nothing older than the current state was shown.
 */
export function keepLoaded(shown: IVersion[], page: IVersion[]): IVersion[] {
  const older = shown.filter(v => !v.current);
  const oldest = older.length ? older[older.length - 1].key : null;
  const at = oldest === null ? -1 : page.findIndex(v => v.key === oldest);
  return at >= 0 ? page.slice(0, at + 1) : page.slice(0, Math.max(PAGE_SIZE, shown.length));
}

/** Pages appended to what the panel shows: newest first, no entry twice (a new save shifts offsets). */
export function mergePages(shown: IVersion[], page: IVersion[]): IVersion[] {
  const seen = new Set(shown.map(v => v.key));
  return [...shown, ...page.filter(v => !seen.has(v.key))];
}

/** "2026-11-25 13:12:07" (or "today 13:12:07") in the browser's time zone, to the second:
 * versions saved a few seconds apart must not read alike. */
export function formatTime(seconds: number, now: Date = new Date()): string {
  const date = new Date(seconds * 1000);
  const pad = (n: number) => String(n).padStart(2, '0');
  const day = `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
  const time = `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
  const today =
    date.getFullYear() === now.getFullYear() && date.getMonth() === now.getMonth() && date.getDate() === now.getDate();
  return today ? `today ${time}` : `${day} ${time}`;
}

/**
 * How long ago, for recent versions ("just now", "42 s ago", "2 min ago",
 * "3 h ago" today); older ones, and times in the future (a clock ahead), as
 * `formatTime`. The panel shows this with the exact time on hover.
 */
export function relativeTime(seconds: number, now: Date = new Date()): string {
  const ago = Math.floor(now.getTime() / 1000 - seconds);
  if (ago < 0) {
    return formatTime(seconds, now);
  }
  if (ago < 10) {
    return 'just now';
  }
  if (ago < 60) {
    return `${ago} s ago`;
  }
  if (ago < 3600) {
    return `${Math.floor(ago / 60)} min ago`;
  }
  const exact = formatTime(seconds, now);
  return ago < 6 * 3600 && exact.startsWith('today') ? `${Math.floor(ago / 3600)} h ago` : exact;
}

/**
 * What Ctrl+S says once the service answered: the reply's `newVersion` tells
 * whether a CS3 version was written while the request was handled (its own
 * save, or one under way that it waited for), else nothing had changed. A
 * failed save says why (`problem`: the room's last save-failed message) and
 * that nothing is lost.
 */
export function saveFeedback(status: string, newVersion: boolean, problem: string | null, now: Date = new Date()): string {
  if (status === 'failed') {
    const why = (problem ?? 'the service could not save it just now').replace(/[.;\s]+$/, '');
    return `Not saved as a CS3 version: ${why.charAt(0).toLowerCase()}${why.slice(1)}. Your edits are kept and saving goes on.`;
  }
  if (newVersion) {
    return `Saved as a new CS3 version (${formatTime(now.getTime() / 1000, now)})`;
  }
  return 'Nothing changed since the last CS3 version';
}

/** The notice every participant sees when someone restores: "Albert Einstein restored the version of today 21:57:03". */
export function restoredNotice(by: string, from: number | null, now: Date = new Date()): string {
  const who = by || 'Someone';
  return from === null ? `${who} restored an earlier version` : `${who} restored the version of ${formatTime(from, now)}`;
}

/**
 * A restore's mark in the history: "restored from today 21:57:03 by Albert
 * Einstein" (the restored version's time when it is listed, else its key).
 */
export function restoredLabel(version: IVersion, listed: IVersion[], now: Date = new Date()): string | null {
  if (!version.restored_from) {
    return null;
  }
  const source = listed.find(v => v.key === version.restored_from);
  const when = source ? formatTime(source.time, now) : 'an earlier version';
  const names = version.authors.map(a => a.name || a.uid).filter(Boolean);
  return `restored from ${when}${names.length ? ` by ${names.join(', ')}` : ''}`;
}

/** An author's institution: `idp`, else the `@idp` end of the uid. */
function institutionOf(author: IVersion['authors'][number]): string {
  if (author.idp) {
    return author.idp;
  }
  const at = author.uid.lastIndexOf('@');
  return at >= 0 ? author.uid.slice(at + 1) : '';
}

/**
 * "Albert Einstein (cernbox.test), Marie Curie (cesnet.test)": who, and from
 * which institution; two different authors who would read the same are told
 * apart by their full `uid`; "saved outside cs3collab" when the service did
 * not write the version.
 */
export function formatAuthors(version: IVersion): string {
  const labels = version.authors
    .filter(a => a.name || a.uid)
    .map(a => {
      const where = institutionOf(a);
      return { uid: a.uid, label: a.name ? (where ? `${a.name} (${where})` : a.name) : a.uid };
    });
  const shown = labels.map(({ uid, label }) =>
    labels.some(other => other.label === label && other.uid !== uid) ? `${label.replace(/ \(.*\)$/, '')} (${uid})` : label
  );
  return shown.length ? shown.join(', ') : 'saved outside cs3collab';
}

/** Tag names are 1–64 characters, not blank, no control or line-separator characters (the service's rule). */
export function tagNameProblem(name: string): string | null {
  if (!name.trim()) {
    return 'A tag needs a name.';
  }
  if ([...name].length > 64) {
    return 'A tag name has at most 64 characters.';
  }
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/.test(name)) {
    return 'A tag name cannot contain control characters or line breaks.';
  }
  return null;
}

/** Cell sources of an nbformat notebook, for the read-only preview. */
export function previewCells(notebook: any): { type: string; source: string; outputs: Record<string, any>[] }[] {
  const cells = Array.isArray(notebook?.cells) ? notebook.cells : [];
  return cells.map((cell: any) => ({
    type: String(cell?.cell_type ?? 'code'),
    source: Array.isArray(cell?.source) ? cell.source.join('') : String(cell?.source ?? ''),
    outputs: outputBundles(cell)
  }));
}

const joined = (text: unknown): string => (Array.isArray(text) ? text.join('') : String(text ?? ''));

/**
 * A code cell's outputs as MIME bundles for a read-only rendermime: results
 * and displays as they are, streams as text, errors as their traceback
 * (ANSI colours are rendered by the text renderer).
 */
export function outputBundles(cell: any): Record<string, any>[] {
  const outputs = Array.isArray(cell?.outputs) ? cell.outputs : [];
  const bundles: Record<string, any>[] = [];
  for (const output of outputs) {
    switch (output?.output_type) {
      case 'execute_result':
      case 'display_data':
        if (output.data && typeof output.data === 'object') {
          const data: Record<string, any> = {};
          for (const [mime, value] of Object.entries(output.data)) {
            data[mime] = mime.startsWith('text/') || mime.endsWith('+xml') ? joined(value) : value;
          }
          bundles.push(data);
        }
        break;
      case 'stream':
        bundles.push({ 'text/plain': joined(output.text) });
        break;
      case 'error':
        bundles.push({
          'text/plain': Array.isArray(output.traceback)
            ? output.traceback.join('\n')
            : `${output.ename ?? 'Error'}: ${output.evalue ?? ''}`
        });
        break;
      default:
        break;
    }
  }
  return bundles;
}

/** The diff's title: "analysis.ipynb: version today 13:12 → current". */
export function diffTitle(path: string, version: IVersion, now: Date = new Date()): string {
  const name = path.split('/').pop() || path;
  return `${name}: version ${formatTime(version.time, now)} → current`;
}
