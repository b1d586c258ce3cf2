/**
 * One notebook's room connection, as the presence bar sees it: y-websocket's
 * connection status, its closes, and the service's RAW messages on the
 * room's socket.
 *
 * The stock frontend (@jupyter/docprovider 5) keeps one WebSocketProvider
 * per open document in ICollaborativeContentProvider.providers; it wraps a
 * y-websocket WebsocketProvider whose current socket is `.ws` (a new socket
 * on every reconnect, a new WebsocketProvider on a "Retry"). Neither is a
 * public API, so everything reached here is feature-tested and optional: if
 * it cannot be found the bar falls back to the contents model's `writable`.
 */

import { ISignal, Signal } from '@lumino/signaling';

import { closeReasonOf, describeClose, isFatalClose, parseServiceMessage, ServiceMessage } from './protocol';
import { ConnectionState } from './presence';

/** The part of y-websocket's WebsocketProvider we use. */
export interface IYWebsocket {
  ws: WebSocket | null;
  wsconnected: boolean;
  wsconnecting?: boolean;
  shouldConnect?: boolean;
  on(name: string, handler: (...args: any[]) => void): void;
  off(name: string, handler: (...args: any[]) => void): void;
}

/** The y-websocket provider behind a docprovider WebSocketProvider, if it has one. */
export function yWebsocketOf(documentProvider: any): IYWebsocket | null {
  const candidate = documentProvider?.wsProvider ?? documentProvider?._yWebsocketProvider ?? null;
  return candidate && typeof candidate.on === 'function' && 'ws' in candidate ? candidate : null;
}

/** The docprovider for `sharedModel` among the content provider's providers. */
export function providerFor(providers: Map<string, any> | undefined, sharedModel: unknown): any {
  if (!providers || typeof providers.values !== 'function') {
    return null;
  }
  for (const provider of providers.values()) {
    if (provider && provider._sharedModel === sharedModel) {
      return provider;
    }
  }
  return null;
}

/**
 * Follows a room's y-websocket provider: connection state, fatal closes and
 * service messages. `rebind` is called whenever the provider may have been
 * replaced (a "Retry"); it is cheap when nothing changed.
 */
export class RoomChannel {
  private _provider: IYWebsocket | null = null;
  private _socket: WebSocket | null = null;
  private _state: ConnectionState = 'connecting';
  private _closeReason: string | null = null;
  private _closeReasonCode: string | null = null;
  private _everConnected = false;
  private _stateChanged = new Signal<this, ConnectionState>(this);
  private _message = new Signal<this, ServiceMessage>(this);

  get state(): ConnectionState {
    return this._state;
  }

  get closeReason(): string | null {
    return this._closeReason;
  }

  /** The service's reason code of the last fatal close ("access_revoked"), if it gave one. */
  get closeReasonCode(): string | null {
    return this._closeReasonCode;
  }

  get bound(): boolean {
    return this._provider !== null;
  }

  get stateChanged(): ISignal<this, ConnectionState> {
    return this._stateChanged;
  }

  get message(): ISignal<this, ServiceMessage> {
    return this._message;
  }

  rebind(provider: IYWebsocket | null): void {
    if (provider === this._provider) {
      this._attachSocket();
      return;
    }
    this._detach();
    this._provider = provider;
    if (provider) {
      provider.on('status', this._onStatus);
      provider.on('connection-close', this._onClose);
      this._closeReason = null;
      this._closeReasonCode = null;
      const state = provider.wsconnected ? 'connected' : this._everConnected ? 'reconnecting' : 'connecting';
      // a new provider (a "Retry") starts afresh, even after a fatal close
      this._setState(state, this._state === 'disconnected');
      this._attachSocket();
    }
  }

  /** The document is gone (disposed after a fatal close, or the tab closed). */
  markDisconnected(reason: string | null): void {
    if (this._state !== 'disconnected' || reason) {
      this._closeReason = reason ?? this._closeReason;
      this._setState('disconnected', true);
    }
  }

  dispose(): void {
    this._detach();
    Signal.clearData(this);
  }

  private _detach(): void {
    if (this._provider) {
      this._provider.off('status', this._onStatus);
      this._provider.off('connection-close', this._onClose);
    }
    this._socket?.removeEventListener('message', this._onMessage);
    this._socket = null;
    this._provider = null;
  }

  private _attachSocket(): void {
    const ws = this._provider?.ws ?? null;
    if (ws === this._socket) {
      return;
    }
    this._socket?.removeEventListener('message', this._onMessage);
    this._socket = ws;
    ws?.addEventListener('message', this._onMessage);
  }

  private _setState(state: ConnectionState, force = false): void {
    if (state === 'connected') {
      this._everConnected = true;
    }
    if (this._state === 'disconnected' && !force) {
      // a fatal close stays shown while y-websocket keeps trying: its sockets
      // may open before the service refuses them, which is no reconnection
      return;
    }
    if (state !== this._state || force) {
      this._state = state;
      this._stateChanged.emit(state);
    }
  }

  private _onStatus = (event: { status: string }): void => {
    this._attachSocket();
    if (event.status === 'connected') {
      if (this._state !== 'disconnected') {
        this._closeReason = null;
        this._closeReasonCode = null;
      }
      this._setState('connected');
    } else if (event.status === 'connecting' || event.status === 'disconnected') {
      this._setState(this._everConnected ? 'reconnecting' : 'connecting');
    }
  };

  private _onClose = (event: CloseEvent | null): void => {
    if (event && isFatalClose(event.code)) {
      this._closeReason = describeClose(event.code, event.reason);
      this._closeReasonCode = closeReasonOf(event.code, event.reason);
      this._setState('disconnected', true);
    } else {
      this._setState(this._everConnected ? 'reconnecting' : 'connecting');
    }
  };

  private _onMessage = (event: MessageEvent): void => {
    if (!(event.data instanceof ArrayBuffer)) {
      return;
    }
    const message = parseServiceMessage(event.data);
    if (message) {
      this._message.emit(message);
    }
  };
}
