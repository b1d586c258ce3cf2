/**
 * Sharing: the REST client of the Jupyter server's sharing routes
 * (cs3collab/jupyter/sharing.py) and the Share dialog's state, kept apart
 * from the DOM so that it is tested on its own.
 */

import { checked, Fetcher } from './rest';

export type ShareKind = 'user' | 'group' | 'federated';
export type ShareRole = 'viewer' | 'editor';

export const ROLES: ShareRole[] = ['viewer', 'editor'];

/** Queries shorter than this are not sent (the server answers them with nothing). */
export const MIN_QUERY = 2;

/** Quiet time after the last keystroke before a search is sent, in ms. */
export const SEARCH_DELAY_MS = 250;

export interface IGrantee {
  id: string;
  idp: string;
  username: string;
  displayName: string;
  institution: string;
}

/** One share of `GET /api/cs3collab/shares`. */
export interface IShare {
  id: string;
  kind: ShareKind;
  grantee: IGrantee;
  role: ShareRole | 'none';
  created: string;
}

export interface IShareList {
  path: string;
  resourceId: string;
  canShare: boolean;
  reason?: string | null;
  owner?: IGrantee | null;
  shares: IShare[];
}

/** One result of `GET /api/cs3collab/people`. */
export interface IPerson {
  kind: ShareKind;
  id: string;
  idp: string;
  displayName: string;
  username?: string;
  mail?: string;
  institution?: string;
}

/** The server's sharing routes. */
export class SharingClient {
  constructor(private readonly fetcher: Fetcher) {}

  async list(path: string): Promise<IShareList> {
    const response = await checked(await this.fetcher(`api/cs3collab/shares?${new URLSearchParams({ path })}`));
    return response.json();
  }

  async share(path: string, person: IPerson, role: ShareRole): Promise<IShare> {
    const body = JSON.stringify({ path, grantee: { kind: person.kind, id: person.id, idp: person.idp }, role });
    const response = await checked(await this.fetcher('api/cs3collab/shares', { method: 'POST', body }));
    return response.json();
  }

  async changeRole(share: IShare, role: ShareRole): Promise<IShare> {
    const response = await checked(
      await this.fetcher(shareUrl(share), { method: 'PATCH', body: JSON.stringify({ role }) })
    );
    return response.json();
  }

  async revoke(share: IShare): Promise<void> {
    await checked(await this.fetcher(shareUrl(share), { method: 'DELETE' }));
  }

  async search(query: string): Promise<IPerson[]> {
    const response = await checked(await this.fetcher(`api/cs3collab/people?${new URLSearchParams({ q: query })}`));
    return (await response.json()).people;
  }
}

function shareUrl(share: IShare): string {
  return `api/cs3collab/shares/${encodeURIComponent(share.kind)}/${encodeURIComponent(share.id)}`;
}

// -- what the dialog shows ---------------------------------------------------------------

/**
 * The label next to a search result, which tells a local account from a
 * federated contact of the same name: "account at cernbox.test",
 * "federated contact at cesnet.test", or "group".
 */
export function kindLabel(person: { kind: ShareKind; institution?: string; idp: string }): string {
  const where = person.institution || person.idp;
  if (person.kind === 'federated') {
    return `federated contact at ${where}`;
  }
  if (person.kind === 'user') {
    return where ? `account at ${where}` : 'account';
  }
  return person.kind;
}

/** The full address of a person, `user@idp` (two Marie Curies differ there); null for a group. */
export function addressOf(person: { kind: ShareKind; username?: string; idp: string }): string | null {
  if (person.kind === 'group' || !person.username) {
    return null;
  }
  return person.username.includes('@') ? person.username : `${person.username}@${person.idp}`;
}

/** How an entry names its grantee in `data-grantee`: `username@idp`, or a group's id. */
export function granteeKey(share: IShare): string {
  return share.kind === 'group' ? share.grantee.id : `${share.grantee.username}@${share.grantee.idp}`;
}

/** Whether a search result is someone the file is shared with already. */
export function hasAccess(person: IPerson, shares: IShare[]): boolean {
  return shares.some(s => s.kind === person.kind && s.grantee.id === person.id && s.grantee.idp === person.idp);
}

/** The last segment of a contents path. */
export function nameOf(path: string): string {
  const parts = path.split('/').filter(Boolean);
  return parts.length ? parts[parts.length - 1] : path;
}

/** Messages of anything thrown: the server's words for a RestError. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

// -- the dialog's state ------------------------------------------------------------------

/**
 * What the Share dialog holds and does; the widget renders it after each
 * `onChange`. Only the newest search's answer is kept (answers can arrive
 * out of order).
 */
export class ShareModel {
  constructor(
    readonly client: SharingClient,
    readonly path: string
  ) {}

  listing: IShareList | null = null;
  results: IPerson[] = [];
  query = '';
  picked: IPerson | null = null;
  role: ShareRole = 'viewer';
  error: string | null = null;
  busy = false;
  /** The id of the share whose "Remove" waits for a confirmation. */
  confirming: string | null = null;

  onChange: () => void = () => undefined;

  get name(): string {
    return nameOf(this.path);
  }

  get shares(): IShare[] {
    return this.listing?.shares ?? [];
  }

  get canShare(): boolean {
    return this.listing?.canShare ?? false;
  }

  /** "Owner: Albert Einstein (cernbox.test)", when the server named the owner. */
  get ownerLine(): string | null {
    const owner = this.listing?.owner;
    if (!owner) {
      return null;
    }
    const where = owner.institution || owner.idp;
    return `Owner: ${owner.displayName}${where ? ` (${where})` : ''}`;
  }

  /** What the list says when it is empty: a recipient does not see the others' shares. */
  get emptyLine(): string {
    return this.canShare
      ? `${this.name} is not shared with anyone yet.`
      : `Only people who may share ${this.name} see who else has access.`;
  }

  /** Why the list is read-only (null when the user may share). */
  get readOnlyReason(): string | null {
    if (!this.listing || this.listing.canShare) {
      return null;
    }
    return this.listing.reason || `You cannot share ${this.name}.`;
  }

  async load(): Promise<void> {
    await this._run(async () => {
      this.listing = await this.client.list(this.path);
    });
  }

  async search(query: string): Promise<void> {
    this.query = query;
    const generation = ++this._generation;
    if (query.trim().length < MIN_QUERY) {
      this.results = [];
      this._changed();
      return;
    }
    try {
      const found = await this.client.search(query.trim());
      if (generation === this._generation) {
        this.results = found;
        this.error = null;
      }
    } catch (error) {
      if (generation === this._generation) {
        this.results = [];
        this.error = messageOf(error);
      }
    }
    this._changed();
  }

  pick(person: IPerson | null): void {
    this.picked = person;
    if (person) {
      ++this._generation; // an answer still on its way must not reopen the list
      this.results = [];
      this.query = person.displayName;
    }
    this._changed();
  }

  setRole(role: ShareRole): void {
    this.role = role;
    this._changed();
  }

  async share(): Promise<void> {
    const person = this.picked;
    if (!person) {
      this.error = 'Pick a person or group first.';
      this._changed();
      return;
    }
    await this._run(async () => {
      const made = await this.client.share(this.path, person, this.role);
      if (this.listing) {
        this.listing = { ...this.listing, shares: [...this.listing.shares.filter(s => s.id !== made.id), made] };
      }
      this.picked = null;
      this.query = '';
      this.results = [];
    });
  }

  async changeRole(share: IShare, role: ShareRole): Promise<void> {
    await this._run(async () => {
      const changed = await this.client.changeRole(share, role);
      this._replace(share.id, changed);
    });
  }

  askRevoke(share: IShare | null): void {
    this.confirming = share ? share.id : null;
    this._changed();
  }

  async revoke(share: IShare): Promise<void> {
    this.confirming = null;
    await this._run(async () => {
      await this.client.revoke(share);
      this._replace(share.id, null);
    });
  }

  private _replace(id: string, share: IShare | null): void {
    if (!this.listing) {
      return;
    }
    const shares = this.listing.shares.flatMap(s => (s.id !== id ? [s] : share ? [share] : []));
    this.listing = { ...this.listing, shares };
  }

  /** One request: busy while it runs, its error (in the server's words) shown after. */
  private async _run(work: () => Promise<void>): Promise<void> {
    this.busy = true;
    this.error = null;
    this._changed();
    try {
      await work();
    } catch (error) {
      this.error = messageOf(error);
    } finally {
      this.busy = false;
      this._changed();
    }
  }

  private _changed(): void {
    this.onChange();
  }

  private _generation = 0;
}

/**
 * Calls `fn` once `delay` ms passed without another call (the search box).
 * `setTimer`/`clearTimer` are the window's, or fakes in tests.
 */
export class Debouncer<T> {
  constructor(
    private readonly fn: (value: T) => void,
    private readonly delay: number = SEARCH_DELAY_MS,
    private readonly setTimer: (cb: () => void, ms: number) => number = (cb, ms) => window.setTimeout(cb, ms),
    private readonly clearTimer: (id: number) => void = id => window.clearTimeout(id)
  ) {}

  call(value: T): void {
    this.cancel();
    this._timer = this.setTimer(() => {
      this._timer = null;
      this.fn(value);
    }, this.delay);
  }

  cancel(): void {
    if (this._timer !== null) {
      this.clearTimer(this._timer);
      this._timer = null;
    }
  }

  private _timer: number | null = null;
}
