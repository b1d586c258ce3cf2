import { describe, expect, it } from 'vitest';

import { providerFor, RoomChannel, yWebsocketOf } from '../src/room';

class FakeSocket extends EventTarget {}

class FakeProvider {
  ws: any = new FakeSocket();
  wsconnected = false;
  handlers = new Map<string, Set<(...args: any[]) => void>>();
  on(name: string, handler: (...args: any[]) => void) {
    if (!this.handlers.has(name)) {this.handlers.set(name, new Set());}
    this.handlers.get(name)!.add(handler);
  }
  off(name: string, handler: (...args: any[]) => void) {
    this.handlers.get(name)?.delete(handler);
  }
  emit(name: string, ...args: any[]) {
    for (const handler of this.handlers.get(name) ?? []) {handler(...args);}
  }
}

function rawFrame(payload: unknown): ArrayBuffer {
  const body = new TextEncoder().encode(JSON.stringify(payload));
  return new Uint8Array([2, body.length, ...body]).buffer;
}

describe('RoomChannel', () => {
  it('follows connection status, reconnects and fatal closes', () => {
    const provider = new FakeProvider();
    const channel = new RoomChannel();
    const states: string[] = [];
    channel.stateChanged.connect((_, state) => states.push(state));
    channel.rebind(provider);
    expect(channel.state).toBe('connecting');
    provider.emit('status', { status: 'connected' });
    provider.emit('connection-close', { code: 1011, reason: 'lost' }, provider);
    provider.emit('status', { status: 'disconnected' });
    provider.emit('status', { status: 'connected' });
    provider.emit('connection-close', { code: 1003, reason: JSON.stringify({ reason: 'access_revoked', errorReason: 'share revoked' }) });
    provider.emit('status', { status: 'disconnected' });
    expect(states).toEqual(['connected', 'reconnecting', 'connected', 'disconnected']);
    expect(channel.closeReason).toBe('share revoked');
    // y-websocket goes on trying; a socket that opens before the service refuses it changes nothing
    provider.emit('status', { status: 'connected' });
    provider.emit('connection-close', { code: 4404, reason: 'not found' });
    provider.emit('status', { status: 'disconnected' });
    expect(channel.state).toBe('disconnected');
    expect(states).toEqual(['connected', 'reconnecting', 'connected', 'disconnected']);
    // a new provider (the stock "Retry") starts afresh
    const retried = new FakeProvider();
    channel.rebind(retried);
    retried.emit('status', { status: 'connected' });
    expect(channel.state).toBe('connected');
  });

  it('emits the service messages of the current socket, and of the next one after a reconnect', () => {
    const provider = new FakeProvider();
    const channel = new RoomChannel();
    const seen: string[] = [];
    channel.message.connect((_, message) => seen.push(message.type));
    channel.rebind(provider);
    provider.ws.dispatchEvent(new MessageEvent('message', { data: rawFrame({ type: 'cs3collab:role', role: 'viewer', readOnly: 'viewer' }) }));
    provider.ws.dispatchEvent(new MessageEvent('message', { data: new Uint8Array([0, 2, 0]).buffer }));
    const old = provider.ws;
    provider.ws = new FakeSocket();
    provider.emit('status', { status: 'connected' });
    old.dispatchEvent(new MessageEvent('message', { data: rawFrame({ type: 'cs3collab:versions-changed' }) }));
    provider.ws.dispatchEvent(new MessageEvent('message', { data: rawFrame({ type: 'cs3collab:saved', etag: 'e' }) }));
    expect(seen).toEqual(['cs3collab:role', 'cs3collab:saved']);
  });

  it('finds the docprovider of a shared model and its y-websocket provider', () => {
    const model = {};
    const y = new FakeProvider();
    const providers = new Map<string, any>([
      ['json:notebook:other.ipynb', { _sharedModel: {}, _yWebsocketProvider: new FakeProvider() }],
      ['json:notebook:a.ipynb', { _sharedModel: model, _yWebsocketProvider: y }]
    ]);
    const provider = providerFor(providers, model);
    expect(yWebsocketOf(provider)).toBe(y);
    expect(providerFor(undefined, model)).toBeNull();
    expect(yWebsocketOf({})).toBeNull();
  });
});
