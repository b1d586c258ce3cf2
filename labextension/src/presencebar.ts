/**
 * The presence bar in a notebook's toolbar: one avatar per participant and
 * the status chip. Rendering only; who is there and what the chip says come
 * from presence.ts, the connection from room.ts.
 */

import { Notification } from '@jupyterlab/apputils';
import { NotebookPanel } from '@jupyterlab/notebook';
import { Widget } from '@lumino/widgets';
import * as Y from 'yjs';

import {
  ConnectionState,
  fromRoleMessage,
  IParticipant,
  IStatus,
  participantsFrom,
  statusChip,
  tooltipOf
} from './presence';

import { applyExecution, runningLabel } from './execution';
import {
  AWARENESS_FIELD,
  IExecutionMessage,
  RAW_EXECUTION,
  RAW_KERNEL,
  RAW_READ_ONLY,
  RAW_ROLE,
  RAW_SAVE_FAILED,
  RAW_RESTORED,
  RAW_SAVE_REPLY,
  RAW_VERSIONS_CHANGED,
  READ_ONLY_STATE,
  readOnlyFromState,
  REVOKED_REASON,
  Role,
  ServiceMessage
} from './protocol';
import { IAccessState } from './readonlystate';
import { RoomChannel } from './room';
import { cellIndexOfCursor } from './cellpresence';
import { restoredNotice, saveFeedback } from './versions';

/** A minimal y-protocols Awareness. */
interface IAwareness {
  clientID: number;
  getStates(): Map<number, Record<string, any>>;
  getLocalState(): Record<string, any> | null;
  setLocalStateField(field: string, value: unknown): void;
  on(name: 'change', handler: () => void): void;
  off(name: 'change', handler: () => void): void;
}

export class PresenceBar extends Widget {
  constructor(
    private readonly panel: NotebookPanel,
    readonly channel: RoomChannel
  ) {
    super();
    this.addClass('cs3collab-PresenceBar');
    this._avatars = document.createElement('div');
    this._avatars.className = 'cs3collab-Avatars';
    this._chip = document.createElement('span');
    this._chip.className = 'cs3collab-StatusChip';
    this._runs = document.createElement('span');
    this._runs.className = 'cs3collab-Running';
    this.node.append(this._avatars, this._chip, this._runs);
    channel.stateChanged.connect(this._update, this);
    channel.message.connect(this._onMessage, this);
    const awareness = this._awareness();
    awareness?.on('change', this._onAwareness);
    const shared = panel.context.model.sharedModel;
    shared.changed.connect(this._onSharedChange, this);
    void panel.context.ready.then(() => {
      this._readStateReason();
      if (this._role === null) {
        this._setRole(panel.context.contentsModel?.writable === false ? 'viewer' : 'editor');
      }
      this._update();
    });
    panel.context.model.sharedModel.disposed.connect(() => channel.markDisconnected(null));
    this._update();
  }

  /** Emitted when the service says the versions changed (or saved). */
  onVersionsChanged: (() => void) | null = null;

  /** Emitted when my role is learnt or changes. */
  onRoleChanged: (() => void) | null = null;

  /** Called after every change of what the tab may do (role, lock, revocation, connection). */
  onAccessChanged: ((access: IAccessState) => void) | null = null;

  /** What this tab may do, as far as it knows now. */
  get access(): IAccessState {
    return {
      role: this._role,
      lockedReason: this._lockedReason,
      revoked: this._revoked,
      connection: this.channel.bound ? this.channel.state : 'connected'
    };
  }

  get role(): Role | null {
    return this._role;
  }

  get participants(): IParticipant[] {
    return this._participants;
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this._awareness()?.off('change', this._onAwareness);
    this.channel.dispose();
    super.dispose();
  }

  private _awareness(): IAwareness | null {
    return ((this.panel.context.model.sharedModel as any).awareness as IAwareness) ?? null;
  }

  /** I own the file (File info says so): the others see me as its owner. */
  setOwner(owner: boolean): void {
    this._owner = owner;
    if (this._role) {
      this._publish();
    }
  }

  private _setRole(role: Role): void {
    const changed = role !== this._role;
    this._role = role;
    if (changed) {
      this.onRoleChanged?.();
    }
    this._publish();
  }

  private _publish(): void {
    const role = this._role;
    const awareness = this._awareness();
    const mine = awareness?.getLocalState()?.[AWARENESS_FIELD];
    const owner = this._owner && role === 'editor';
    if (awareness && role && (mine?.role !== role || Boolean(mine?.owner) !== owner)) {
      awareness.setLocalStateField(AWARENESS_FIELD, owner ? { role, owner } : { role });
    }
  }

  private _onMessage(_: RoomChannel, message: ServiceMessage): void {
    if (message.type === RAW_ROLE) {
      const { role, lockedReason } = fromRoleMessage(message.role, message.readOnly);
      this._lockedReason = lockedReason;
      this._setRole(role);
    } else if (message.type === RAW_READ_ONLY) {
      this._lockedReason = message.reason;
    } else if (message.type === RAW_SAVE_FAILED) {
      this._saveProblem = message.message || 'the notebook could not be saved; retrying';
    } else if (message.type === RAW_SAVE_REPLY) {
      const words = saveFeedback(message.status, message.newVersion, this._saveProblem);
      if (message.status === 'failed') {
        Notification.warning(words, { autoClose: 8000 });
      } else {
        Notification.info(words, { autoClose: 5000 });
      }
    } else if (message.type === RAW_RESTORED) {
      Notification.info(restoredNotice(message.by, message.from), { autoClose: 10000 });
      this.onVersionsChanged?.();
    } else if (message.type === RAW_VERSIONS_CHANGED || message.type === 'cs3collab:saved') {
      if (message.type === 'cs3collab:saved') {
        this._saveProblem = null;
      }
      this.onVersionsChanged?.();
    } else if (message.type === RAW_EXECUTION) {
      applyExecution(this._running, message);
      this._runs.textContent = runningLabel(this._running);
      this._runs.title = [...this._running.values()].map(run => `${run.by} (${run.site})`).join('\n');
      if (message.error) {
        Notification.warning(message.error, { autoClose: false });
      }
    } else if (message.type === RAW_KERNEL) {
      if (message.event === 'died' || message.event === 'culled' || message.event === 'workspace') {
        Notification.warning(message.message, { autoClose: message.event === 'culled' ? 8000 : false });
        this._running.clear();
        this._runs.textContent = '';
      }
    }
    this._update();
  }

  private _readStateReason(): void {
    const reason = readOnlyFromState(this.panel.context.model.sharedModel.getState(READ_ONLY_STATE));
    if (reason !== undefined) {
      this._lockedReason = reason;
    }
  }

  private _onSharedChange(_: unknown, change: any): void {
    if (Array.isArray(change?.stateChange) && change.stateChange.some((c: any) => c?.name === READ_ONLY_STATE)) {
      this._readStateReason();
      this._update();
    }
  }

  private _onAwareness = (): void => {
    this._update();
  };

  private _update(): void {
    if (this.isDisposed) {
      return;
    }
    const awareness = this._awareness();
    this._participants = awareness ? participantsFrom(awareness.getStates(), awareness.clientID) : [];
    this._avatars.replaceChildren(...this._participants.map(p => this._avatar(p)));
    const state: ConnectionState = this.channel.bound ? this.channel.state : 'connected';
    if (this.channel.closeReasonCode === REVOKED_REASON) {
      this._revoked = true; // stays until a new connection (a "Retry") is live
    } else if (state === 'connected' && this.channel.bound) {
      this._revoked = false;
    }
    const status: IStatus = {
      connection: state,
      closeReason: this.channel.closeReason,
      role: this._role,
      lockedReason: this._lockedReason,
      saveProblem: this._saveProblem,
      people: this._participants.length
    };
    const chip = statusChip(status);
    this._chip.textContent = chip.text;
    this._chip.dataset.kind = chip.kind;
    this._chip.title = chip.text;
    this.onAccessChanged?.(this.access);
  }

  private _avatar(participant: IParticipant): HTMLElement {
    const avatar = document.createElement('button');
    avatar.className = 'cs3collab-Avatar';
    avatar.textContent = participant.initials;
    avatar.title = tooltipOf(participant);
    avatar.style.backgroundColor = participant.color;
    avatar.dataset.username = participant.username;
    if (participant.role) {
      avatar.dataset.role = participant.role;
    }
    if (participant.isMe) {
      avatar.classList.add('cs3collab-mod-me');
    }
    avatar.addEventListener('click', () => this.scrollToCursor(participant));
    return avatar;
  }

  /** Scroll the notebook to the cell holding `participant`'s cursor, and make it active. */
  scrollToCursor(participant: IParticipant): boolean {
    const awareness = this._awareness();
    const state = awareness?.getStates().get(participant.cursorClientId);
    const ydoc = (this.panel.context.model.sharedModel as any).ydoc as Y.Doc;
    const notebook = this.panel.content;
    const sources = notebook.widgets.map(cell => (cell.model.sharedModel as any).ysource);
    const index = cellIndexOfCursor(state, ydoc, sources);
    if (index < 0) {
      return false;
    }
    notebook.activeCellIndex = index;
    void notebook.scrollToItem(index, 'center');
    return true;
  }

  private _avatars: HTMLElement;
  private _chip: HTMLElement;
  private _runs: HTMLElement;
  private _running = new Map<string, IExecutionMessage>();
  private _saveProblem: string | null = null;
  private _role: Role | null = null;
  private _lockedReason: string | null = null;
  private _revoked = false;
  private _owner = false;
  private _participants: IParticipant[] = [];
}
