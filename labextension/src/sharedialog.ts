/**
 * The Share dialog: search people, groups and contacts at other
 * institutions, pick viewer or editor, share; the people with access, each
 * with a role select and a Remove button (confirmed in place). The state
 * and the requests are ShareModel's (sharing.ts); this file only renders.
 */

import { Dialog, showDialog } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import {
  Debouncer,
  granteeKey,
  hasAccess,
  IPerson,
  IShare,
  addressOf,
  kindLabel,
  ROLES,
  ShareModel,
  ShareRole,
  SharingClient
} from './sharing';

function element<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className: string,
  text?: string
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  node.className = className;
  if (text !== undefined) {
    node.textContent = text;
  }
  return node;
}

function roleSelect(className: string, value: string, onChange: (role: ShareRole) => void): HTMLSelectElement {
  const select = element('select', `jp-mod-styled ${className}`);
  for (const role of ROLES) {
    const option = document.createElement('option');
    option.value = role;
    option.textContent = role === 'editor' ? 'Editor (can edit)' : 'Viewer (can read)';
    select.append(option);
  }
  select.value = value;
  select.addEventListener('change', () => onChange(select.value as ShareRole));
  return select;
}

/** The dialog's body. */
export class ShareDialogBody extends Widget {
  constructor(readonly model: ShareModel) {
    super();
    this.addClass('cs3collab-ShareDialog');
    this._error = element('div', 'cs3collab-ShareError');
    this._error.setAttribute('role', 'alert');
    this._notice = element('div', 'cs3collab-ShareNotice');

    this._search = element('input', 'jp-mod-styled cs3collab-ShareSearch');
    this._search.type = 'search';
    this._search.placeholder = 'Add people, groups or contacts at other institutions';
    this._search.setAttribute('aria-label', 'Search people to share with');
    this._search.addEventListener('input', () => {
      if (this.model.picked) {
        this.model.pick(null);
      }
      this._debouncer.call(this._search.value);
    });
    this._role = roleSelect('cs3collab-ShareRole', model.role, role => model.setRole(role));
    this._add = element('button', 'jp-mod-styled jp-mod-accept cs3collab-ShareAdd', 'Share');
    this._add.addEventListener('click', () => void model.share().then(this._refocus));
    this._form = element('div', 'cs3collab-ShareForm');
    this._form.append(this._search, this._role, this._add);
    this._results = element('ul', 'cs3collab-ShareResults');
    this._list = element('ul', 'cs3collab-ShareList');
    this._heading = element('div', 'cs3collab-ShareHeading', 'People with access');
    this._owner = element('div', 'cs3collab-ShareOwner');
    this.node.append(this._error, this._notice, this._form, this._results, this._heading, this._owner, this._list);

    model.onChange = () => this.render();
    this.render();
  }

  /**
   * Enter in the search box picks the first result. The Dialog treats Enter
   * in an input as "Done" from a capturing listener on its node, so this one
   * captures earlier, on the document.
   */
  protected onAfterAttach(): void {
    document.addEventListener('keydown', this._onEnter, true);
  }

  protected onBeforeDetach(): void {
    document.removeEventListener('keydown', this._onEnter, true);
  }

  private _onEnter = (event: KeyboardEvent): void => {
    if (event.key !== 'Enter' || event.target !== this._search) {
      return;
    }
    event.stopPropagation();
    event.preventDefault();
    const first = this.model.results[0];
    if (first) {
      this._choose(first);
    } else if (this.model.picked) {
      void this.model.share().then(this._refocus);
    }
  };

  dispose(): void {
    document.removeEventListener('keydown', this._onEnter, true);
    this._debouncer.cancel();
    this.model.onChange = () => undefined;
    super.dispose();
  }

  /** Rebuild the parts that change from the model. */
  render(): void {
    const model = this.model;
    this._error.textContent = model.error ?? '';
    this._error.hidden = !model.error;
    const reason = model.readOnlyReason;
    this._notice.textContent = reason ?? '';
    this._notice.hidden = !reason;
    this._owner.textContent = model.ownerLine ?? '';
    this._owner.hidden = !model.ownerLine;
    // shown while the list loads (the search box has the focus), hidden for who cannot share
    this._form.hidden = model.listing !== null && !model.canShare;
    this._add.disabled = model.busy || !model.picked;
    this._role.value = model.role;
    if (model.picked && this._search.value !== model.query) {
      this._search.value = model.query;
    } else if (!model.picked && !model.query && this._search.value) {
      this._search.value = ''; // after a share
    }
    this._renderResults();
    this._renderList();
  }

  private _renderResults(): void {
    const model = this.model;
    this._results.replaceChildren();
    this._results.hidden = this._form.hidden || model.results.length === 0;
    for (const person of model.results) {
      const item = element('li', 'cs3collab-ShareResult');
      item.dataset.kind = person.kind;
      item.tabIndex = 0;
      item.setAttribute('role', 'option');
      item.append(element('span', 'cs3collab-ShareName', person.displayName));
      item.append(element('span', 'cs3collab-ShareKind', kindLabel(person)));
      const address = addressOf(person);
      if (address) {
        item.append(element('span', 'cs3collab-ShareAddress', address));
      }
      if (person.mail && person.mail !== address) {
        item.append(element('span', 'cs3collab-ShareMail', person.mail));
      }
      if (hasAccess(person, model.shares)) {
        item.append(element('span', 'cs3collab-ShareHas', 'has access'));
      }
      const choose = () => this._choose(person);
      item.addEventListener('click', choose);
      item.addEventListener('keydown', event => {
        if (event.key === ' ' || event.key === 'Enter') {
          event.preventDefault();
          choose();
        }
      });
      this._results.append(item);
    }
  }

  /**
   * Back to the search box after a button that disappears or is disabled was
   * used: the focus stays in the dialog (Escape, Tab, Enter keep working).
   */
  private _refocus = (): void => {
    if (!this._form.hidden) {
      this._search.focus();
    } else {
      (this.node.closest('.jp-Dialog-content')?.querySelector('.jp-Dialog-button') as HTMLElement | null)?.focus();
    }
  };

  private _choose(person: IPerson): void {
    this._debouncer.cancel();
    this.model.pick(person);
    this._add.focus();
  }

  private _renderList(): void {
    const model = this.model;
    // the entries are rebuilt: the focused control's twin in the new entry gets the focus back
    const focused = document.activeElement as HTMLElement | null;
    const wasIn = focused && this._list.contains(focused) ? focused.closest<HTMLElement>('.cs3collab-ShareEntry') : null;
    const again = wasIn ? { grantee: wasIn.dataset.grantee, className: focused!.classList[focused!.classList.length - 1] } : null;
    this._list.replaceChildren();
    if (model.listing && model.shares.length === 0) {
      this._list.append(element('li', 'cs3collab-ShareEmpty', model.emptyLine));
    }
    for (const share of model.shares) {
      this._list.append(this._entry(share));
    }
    if (again) {
      const item = [...this._list.querySelectorAll<HTMLElement>('.cs3collab-ShareEntry')].find(
        candidate => candidate.dataset.grantee === again.grantee
      );
      // the same control, else the entry's first button (Remove → its confirmation)
      const twin = item?.querySelector<HTMLElement>(`.${again.className}`) ?? item?.querySelector<HTMLElement>('button');
      if (twin) {
        twin.focus();
      } else {
        this._refocus();
      }
    }
  }

  private _entry(share: IShare): HTMLLIElement {
    const model = this.model;
    const item = element('li', 'cs3collab-ShareEntry');
    item.dataset.grantee = granteeKey(share);
    item.dataset.kind = share.kind;
    const who = element('div', 'cs3collab-ShareWho');
    who.append(element('span', 'cs3collab-ShareName', share.grantee.displayName));
    const where = share.kind === 'group' ? 'group' : share.grantee.institution;
    if (where) {
      who.append(element('span', 'cs3collab-ShareInstitution', share.kind === 'federated' ? `at ${where}` : where));
    }
    item.append(who);
    const role = roleSelect('cs3collab-ShareEntryRole', share.role, next => void model.changeRole(share, next));
    role.disabled = !model.canShare || model.busy;
    role.setAttribute('aria-label', `Role of ${share.grantee.displayName}`);
    item.append(role);
    if (!model.canShare) {
      return item;
    }
    if (model.confirming === share.id) {
      const confirm = element('button', 'jp-mod-styled jp-mod-warn cs3collab-ShareRevokeConfirm', 'Remove access');
      confirm.addEventListener('click', () => void model.revoke(share).then(this._refocus));
      const cancel = element('button', 'jp-mod-styled jp-mod-reject cs3collab-ShareRevokeCancel', 'Keep');
      cancel.addEventListener('click', () => model.askRevoke(null));
      const ask = element('span', 'cs3collab-ShareConfirmText', `Remove ${share.grantee.displayName}'s access?`);
      const row = element('div', 'cs3collab-ShareConfirm');
      row.append(ask, confirm, cancel);
      item.append(row);
    } else {
      const revoke = element('button', 'jp-mod-styled cs3collab-ShareRevoke', 'Remove');
      revoke.title = `Remove ${share.grantee.displayName}'s access`;
      revoke.disabled = model.busy;
      revoke.addEventListener('click', () => model.askRevoke(share));
      item.append(revoke);
    }
    return item;
  }

  private _debouncer = new Debouncer<string>(query => void this.model.search(query));
  private _error: HTMLDivElement;
  private _notice: HTMLDivElement;
  private _search: HTMLInputElement;
  private _role: HTMLSelectElement;
  private _add: HTMLButtonElement;
  private _form: HTMLDivElement;
  private _results: HTMLUListElement;
  private _heading: HTMLDivElement;
  private _owner: HTMLDivElement;
  private _list: HTMLUListElement;
}

/** Open the Share dialog for a contents path; resolves when it is closed. */
export async function openShareDialog(client: SharingClient, path: string): Promise<void> {
  const model = new ShareModel(client, path);
  const body = new ShareDialogBody(model);
  void model.load();
  await showDialog({
    title: `Share ${model.name}`,
    body,
    buttons: [Dialog.okButton({ label: 'Done' })],
    focusNodeSelector: '.cs3collab-ShareSearch'
  });
}
