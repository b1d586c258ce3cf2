/**
 * The CS3 file browser: a left-sidebar panel "CS3 files" with three tabs,
 * "My files" (a stock JupyterLab file browser made by the file browser
 * factory, so navigation is the stock one), "Shared with me" (received
 * shares, pending ones first with Accept and Decline) and "Shared by me"
 * (the user's shares, with a Manage button when the sharing dialog's
 * `cs3collab:share` command exists). REST: cs3collab/jupyter/browse.py.
 */

import { ILayoutRestorer, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { showErrorMessage, ToolbarButton } from '@jupyterlab/apputils';
import { FileBrowser, IFileBrowserFactory } from '@jupyterlab/filebrowser';
import { fileIcon, folderIcon, LabIcon, notebookIcon, refreshIcon } from '@jupyterlab/ui-components';
import { TabPanel, Widget } from '@lumino/widgets';

import {
  BrowseClient,
  IReceivedRow,
  ISentRow,
  ItemType,
  receivedRows,
  sentRows
} from './browsemodel';
import { ACCESS_CHANGED_EVENT } from './readonlystate';
import { addFileInfoCommand, FILE_INFO_COMMAND } from './fileinfo';
import { serverFetcher } from './serverfetcher';

export const BROWSER_ID = 'cs3collab-browser';
export const SHARE_COMMAND = 'cs3collab:share';

export const cloudIcon = new LabIcon({
  name: 'cs3collab:cloud',
  svgstr:
    '<svg xmlns="http://www.w3.org/2000/svg" width="16" viewBox="0 0 24 24">' +
    '<path class="jp-icon3" fill="#616161" d="M6.5 19a4.5 4.5 0 0 1-.6-8.96A6 6 0 0 1 17.6 8.6 ' +
    '5.2 5.2 0 0 1 17.8 19H6.5zm0-2h11.3a3.2 3.2 0 0 0 0-6.4h-1.6l-.3-1.3a4 4 0 0 0-7.7.9' +
    'l-.2 1.4-1.4.1a2.5 2.5 0 0 0 .1 5z"/></svg>'
});

/** What the lists need from the application. */
export interface IBrowserActions {
  open(path: string): void;
  /** A received share was accepted or declined: "Shared with me" changed. */
  changed(): void;
  hasCommand(id: string): boolean;
  execute(id: string, args: { path: string }): void;
}

function button(label: string, className: string, onClick: () => void): HTMLButtonElement {
  const element = document.createElement('button');
  element.className = `jp-Button jp-mod-styled jp-mod-small ${className}`;
  element.textContent = label;
  element.addEventListener('click', event => {
    event.stopPropagation();
    onClick();
  });
  return element;
}

function typeIcon(type: ItemType): HTMLElement {
  const icon = type === 'directory' ? folderIcon : type === 'notebook' ? notebookIcon : fileIcon;
  return icon.element({ tag: 'span', className: 'cs3collab-RowIcon' });
}

function text(className: string, value: string): HTMLElement {
  const element = document.createElement('div');
  element.className = className;
  element.textContent = value;
  return element;
}

/** A refreshable list of shares: header with Refresh, a message line, the rows. */
abstract class ShareList extends Widget {
  constructor(
    protected readonly client: BrowseClient,
    protected readonly actions: IBrowserActions,
    private readonly empty: string
  ) {
    super();
    this.addClass('cs3collab-ShareList');
    const header = document.createElement('div');
    header.className = 'cs3collab-ListHeader';
    header.append(button('Refresh', 'cs3collab-Refresh', () => void this.refresh()));
    this._message = document.createElement('div');
    this._message.className = 'cs3collab-ListMessage';
    this._list = document.createElement('ul');
    this._list.className = 'cs3collab-Rows';
    this._extra = document.createElement('div');
    this.node.append(header, this._message, this._list, this._extra);
  }

  protected onAfterShow(): void {
    void this.refresh();
  }

  async refresh(): Promise<void> {
    const generation = ++this._generation;
    try {
      const [rows, extra] = await this.load();
      if (generation === this._generation) {
        this._message.textContent = rows.length || extra ? '' : this.empty;
        this._list.replaceChildren(...rows);
        this._extra.replaceChildren(...(extra ? [extra] : []));
      }
    } catch (error) {
      if (generation === this._generation) {
        this._message.textContent = `Cannot list: ${(error as Error).message}`;
      }
    }
  }

  /** The rows, and what goes below them (or null). */
  protected abstract load(): Promise<[HTMLElement[], HTMLElement | null]>;

  private _generation = 0;
  private _extra: HTMLElement;
  private _message: HTMLElement;
  private _list: HTMLElement;
}

/** "Shared with me": received shares, pending first with Accept and Decline. */
export class ReceivedList extends ShareList {
  constructor(client: BrowseClient, actions: IBrowserActions) {
    super(client, actions, 'Nothing is shared with you yet.');
  }

  protected async load(): Promise<[HTMLElement[], HTMLElement | null]> {
    const rows = receivedRows(await this.client.received());
    const shown = rows.filter(row => row.share.state !== 'declined').map(row => this._row(row));
    const declined = rows.filter(row => row.share.state === 'declined').map(row => this._row(row));
    if (!declined.length) {
      return [shown, null];
    }
    // declined shares are out of the way, but can still be accepted
    const section = document.createElement('details');
    section.className = 'cs3collab-Declined';
    section.open = this._declinedOpen;
    section.addEventListener('toggle', () => (this._declinedOpen = section.open));
    const summary = document.createElement('summary');
    summary.textContent = `Declined (${declined.length})`;
    const list = document.createElement('ul');
    list.className = 'cs3collab-Rows';
    list.append(...declined);
    section.append(summary, list);
    return [shown, section];
  }

  private _declinedOpen = false;

  private _row(row: IReceivedRow): HTMLElement {
    const { share } = row;
    const item = document.createElement('li');
    item.className = 'cs3collab-Row cs3collab-ReceivedShare';
    item.dataset.state = share.state;
    item.dataset.name = share.name;
    item.dataset.kind = share.kind;
    item.dataset.id = share.id;
    if (share.path) {
      item.dataset.path = share.path;
    }
    const main = document.createElement('div');
    main.className = 'cs3collab-RowMain';
    const name = text('cs3collab-RowName', share.name);
    main.append(name, text('cs3collab-RowFrom', row.from), text('cs3collab-RowDetails', row.details));
    const buttons = document.createElement('div');
    buttons.className = 'cs3collab-RowActions';
    if (row.actions.includes('open') && share.path) {
      const path = share.path;
      name.classList.add('cs3collab-mod-link');
      name.title = `Open ${path}`;
      name.addEventListener('click', () => this.actions.open(path));
      buttons.append(button('Info', 'cs3collab-Info', () => this.actions.execute(FILE_INFO_COMMAND, { path })));
    }
    if (row.actions.includes('accept')) {
      buttons.append(button('Accept', 'cs3collab-Accept', () => void this._set(row, 'accepted', buttons)));
    }
    if (row.actions.includes('decline')) {
      buttons.append(button('Decline', 'cs3collab-Decline', () => void this._set(row, 'declined', buttons)));
    }
    item.append(typeIcon(share.type), main, buttons);
    return item;
  }

  private async _set(row: IReceivedRow, state: 'accepted' | 'declined', buttons: HTMLElement): Promise<void> {
    buttons.querySelectorAll('button').forEach(b => (b.disabled = true));
    try {
      await this.client.setState(row.share, state);
    } catch (error) {
      void showErrorMessage(state === 'accepted' ? 'Accept share' : 'Decline share', (error as Error).message);
    }
    this.actions.changed();
    await this.refresh();
  }
}

/** "Shared by me": my shares, file, grantee and role; Manage opens the sharing dialog. */
export class SentList extends ShareList {
  constructor(client: BrowseClient, actions: IBrowserActions) {
    super(client, actions, 'You have not shared anything yet.');
  }

  protected async load(): Promise<[HTMLElement[], HTMLElement | null]> {
    return [sentRows(await this.client.sharedByMe()).map(row => this._row(row)), null];
  }

  private _row(row: ISentRow): HTMLElement {
    const { share } = row;
    const item = document.createElement('li');
    item.className = 'cs3collab-Row cs3collab-SentShare';
    item.dataset.name = share.name;
    item.dataset.grantee = share.grantee.username;
    item.dataset.kind = share.kind;
    item.dataset.role = share.role;
    if (share.path !== null) {
      item.dataset.path = share.path;
    }
    const main = document.createElement('div');
    main.className = 'cs3collab-RowMain';
    const name = text('cs3collab-RowName', share.name);
    main.append(name, text('cs3collab-RowTo', row.to), text('cs3collab-RowDetails', row.details));
    const buttons = document.createElement('div');
    buttons.className = 'cs3collab-RowActions';
    if (share.path !== null) {
      const path = share.path;
      name.classList.add('cs3collab-mod-link');
      name.title = `Open ${path}`;
      name.addEventListener('click', () => this.actions.open(path));
      buttons.append(button('Info', 'cs3collab-Info', () => this.actions.execute(FILE_INFO_COMMAND, { path })));
      if (this.actions.hasCommand(SHARE_COMMAND)) {
        buttons.append(button('Manage', 'cs3collab-Manage', () => this.actions.execute(SHARE_COMMAND, { path })));
      }
    }
    const type: ItemType = share.name.endsWith('.ipynb') ? 'notebook' : 'file';
    item.append(typeIcon(type), main, buttons);
    return item;
  }
}

/** The sidebar panel: tabs "My files", "Shared with me", "Shared by me". */
export class CS3Browser extends TabPanel {
  constructor(
    readonly mine: FileBrowser,
    client: BrowseClient,
    actions: IBrowserActions
  ) {
    super({ tabPlacement: 'top' });
    this.id = BROWSER_ID;
    this.addClass('cs3collab-Browser');
    this.title.icon = cloudIcon;
    this.title.caption = 'CS3 files';
    this.withMe = new ReceivedList(client, actions);
    this.byMe = new SentList(client, actions);
    const tabs: [Widget, string, string][] = [
      [mine, 'My files', 'mine'],
      [this.withMe, 'Shared with me', 'with-me'],
      [this.byMe, 'Shared by me', 'by-me']
    ];
    for (const [widget, label, tab] of tabs) {
      widget.title.label = label;
      widget.title.className = 'cs3collab-BrowserTab';
      widget.title.dataset = { tab };
      this.addWidget(widget);
    }
    // the lists refresh themselves when shown; My files too (not only on its poll)
    this.currentChanged.connect((_, change) => {
      if (change.currentWidget === mine) {
        void mine.model.refresh();
      }
    });
  }

  readonly withMe: ReceivedList;
  readonly byMe: SentList;
}


export const browserPlugin: JupyterFrontEndPlugin<void> = {
  id: '@cs3collab/labextension:browser',
  description: 'cs3collab: the CS3 file browser (My files, Shared with me, Shared by me) and File info',
  autoStart: true,
  requires: [IFileBrowserFactory],
  optional: [ILayoutRestorer],
  activate: (
    app: JupyterFrontEnd,
    factory: IFileBrowserFactory,
    restorer: ILayoutRestorer | null
  ) => {
    const client = new BrowseClient(serverFetcher(app.serviceManager.serverSettings));
    const mine = factory.createFileBrowser('cs3collab-myfiles');
    mine.toolbar.addItem(
      'refresh',
      new ToolbarButton({
        icon: refreshIcon,
        tooltip: 'Refresh the file list',
        onClick: () => void mine.model.refresh()
      })
    );
    const actions: IBrowserActions = {
      open: path => void app.commands.execute('docmanager:open', { path }),
      changed: () => void mine.model.refresh(),
      hasCommand: id => app.commands.hasCommand(id),
      execute: (id, args) => void app.commands.execute(id, args)
    };
    const panel = new CS3Browser(mine, client, actions);
    app.shell.add(panel, 'left', { rank: 150 });
    restorer?.add(panel, BROWSER_ID);
    addFileInfoCommand(app, factory, client);
    // a notebook tab's role changed (or its access went): the roles listed may be stale
    window.addEventListener(ACCESS_CHANGED_EVENT, () => {
      if (panel.withMe.isVisible) {
        void panel.withMe.refresh();
      }
    });
  }
};
