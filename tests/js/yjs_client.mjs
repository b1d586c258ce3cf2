#!/usr/bin/env node
// A real Yjs client for the cs3collab tests: yjs + y-websocket's WebsocketProvider
// (1.5.4, the version the stock JupyterLab RTC frontend bundles) + @jupyter/ydoc's
// YNotebook, wired the way @jupyter/docprovider wires them (yprovider.ts): the
// provider shares the notebook's Y.Doc and awareness, BroadcastChannel is off,
// `params = {sessionId, token}`, and after the first sync the client writes
// `state.document_id`.
//
// Usage:
//   node yjs_client.mjs --url http://127.0.0.1:PORT --room json:notebook:FILEID \
//     --session SESSION_ID --token CS3_TOKEN [--name NAME] [--timeout SECONDS] [--trace]
//     [--commands '[{"op": ...}, ...]']
//
// Commands come as JSON lines on stdin (and/or a JSON array in --commands, run
// first, after the first sync). Each may carry an "id"; when a command is complete
// the client prints {"event":"done","id":...,"op":...}:
//   {"op":"type","cell":0,"at":"end"|N,"text":"..."}   one transaction per character
//   {"op":"add_cell","cell_type":"markdown","source":"","index":N?}
//   {"op":"disconnect"}   destroy the provider (the doc and awareness stay)
//   {"op":"connect"}      a new WebsocketProvider on the same doc; done once synced
//   {"op":"save"}         the frontend's RAW save request; prints {"event":"saved",...}
//   {"op":"content"}      print the current content
//   {"op":"exit"}         leave; closing stdin does the same
//
// Events on stdout, one JSON object a line:
//   {"event":"status","status":"connected"|"disconnected"}
//   {"event":"synced","connection":N,"cells":[...]}
//   {"event":"content","cells":[{id,cell_type,source}],"notebook":{...}} after each change
//   {"event":"close","code":N,"reason":"..."}          a WebSocket close seen by the provider
//   {"event":"saved","id":..,"status":"success"|...}
//   {"event":"done",...}, {"event":"error","message":...}, {"event":"timeout"}
// With --trace every frame sent and received is described on stderr (JSON lines);
// a received frame is logged after the provider handled it, so a reply it caused
// (step2 for a step1) is logged just before it.
// The process always ends by itself: on "exit", on stdin end, or after --timeout.

import { parseArgs } from 'node:util'
import { createInterface } from 'node:readline'
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import WebSocket from 'ws'
import { WebsocketProvider } from 'y-websocket'
import { YNotebook } from '@jupyter/ydoc'

const { values: args } = parseArgs({
  options: {
    url: { type: 'string' },
    room: { type: 'string' },
    session: { type: 'string', default: '' },
    token: { type: 'string', default: '' },
    name: { type: 'string', default: 'node-yjs' },
    timeout: { type: 'string', default: '60' },
    commands: { type: 'string', default: '[]' },
    trace: { type: 'boolean', default: false }
  }
})
if (!args.url || !args.room) {
  process.stderr.write('usage: yjs_client.mjs --url URL --room FORMAT:TYPE:FILEID --session ID --token TOKEN\n')
  process.exit(2)
}

const emit = (event) => process.stdout.write(JSON.stringify(event) + '\n')
const trace = (entry) => {
  if (args.trace) process.stderr.write(JSON.stringify({ t: Date.now(), ...entry }) + '\n')
}

const serverUrl = args.url.replace(/^http/, 'ws').replace(/\/+$/, '') + '/api/collaboration/room'
const params = {}
if (args.session) params.sessionId = args.session
if (args.token) params.token = args.token

const notebook = new YNotebook({ disableDocumentWideUndoRedo: true })
const doc = notebook.ydoc
const awareness = notebook.awareness
// what every JupyterLab tab puts in its awareness (from GET api/me)
awareness.setLocalStateField('user', {
  username: args.name,
  name: args.name,
  display_name: args.name,
  initials: args.name.slice(0, 2).toUpperCase(),
  color: 'var(--jp-collaborator-color1)'
})

const cellsOf = () =>
  notebook.cells.map((cell) => ({ id: cell.id, cell_type: cell.cell_type, source: cell.source }))

// one content event per burst of changes (per macrotask); 'update' fires only on a real change
let contentPending = false
doc.on('update', () => {
  if (contentPending) return
  contentPending = true
  setImmediate(() => {
    contentPending = false
    emit({ event: 'content', cells: cellsOf(), notebook: notebook.toJSON() })
  })
})

// -- frame tracing ---------------------------------------------------------------

const describe = (data) => {
  const bytes = data instanceof ArrayBuffer ? new Uint8Array(data) : new Uint8Array(data.buffer ?? data, data.byteOffset ?? 0, data.byteLength ?? data.length)
  const d = decoding.createDecoder(bytes)
  const out = { bytes: bytes.length }
  try {
    const type = decoding.readVarUint(d)
    if (type === 0) {
      const sub = decoding.readVarUint(d)
      out.frame = ['sync-step1', 'sync-step2', 'sync-update'][sub] ?? `sync-${sub}`
      out.payload = decoding.readVarUint8Array(d).length
    } else if (type === 1) {
      out.frame = 'awareness'
      const a = decoding.createDecoder(decoding.readVarUint8Array(d))
      const n = decoding.readVarUint(a)
      out.states = []
      for (let i = 0; i < n; i++) {
        const client = decoding.readVarUint(a)
        const clock = decoding.readVarUint(a)
        const state = JSON.parse(decoding.readVarString(a))
        out.states.push({ client, clock, user: state === null ? null : (state.user?.username ?? Object.keys(state)) })
      }
    } else if (type === 2) {
      out.frame = 'raw'
      out.text = decoding.readVarString(d)
    } else if (type === 3) {
      out.frame = 'query-awareness'
    } else {
      out.frame = `type-${type}`
    }
  } catch (err) {
    out.undecodable = String(err)
  }
  return out
}

// -- the provider -------------------------------------------------------------------

let provider = null
let connections = 0
let lastSaveId = 0
const saveWaiters = new Map()

const connect = () => new Promise((resolve) => {
  connections += 1
  const connection = connections
  provider = new WebsocketProvider(serverUrl, args.room, doc, {
    disableBc: true,
    params,
    awareness,
    WebSocketPolyfill: WebSocket
  })
  const current = provider
  let firstSync = true
  current.on('status', ({ status }) => {
    emit({ event: 'status', status, connection })
    if (status === 'connected' && current.ws) {
      const ws = current.ws
      const send = ws.send.bind(ws)
      ws.send = (data, ...rest) => {
        trace({ dir: 'out', connection, ...describe(data) })
        return send(data, ...rest)
      }
      ws.addEventListener('message', (event) => {
        const info = describe(event.data)
        trace({ dir: 'in', connection, ...info })
        if (info.frame === 'raw') onRaw(info.text)
      })
    }
  })
  current.on('connection-close', (event) => {
    emit({ event: 'close', connection, code: event?.code ?? null, reason: String(event?.reason ?? '') })
  })
  current.on('connection-error', (event) => {
    emit({ event: 'connection-error', connection, message: String(event?.message ?? event?.error ?? 'error') })
  })
  current.on('sync', (isSynced) => {
    if (!isSynced) return
    if (firstSync) {
      firstSync = false
      // @jupyter/docprovider's _onSync: every tab records the room it belongs to
      notebook.ystate.set('document_id', args.room)
      emit({ event: 'synced', connection, cells: cellsOf() })
      resolve()
    }
  })
})

const disconnect = () => new Promise((resolve) => {
  const current = provider
  provider = null
  if (current === null) return resolve()
  const ws = current.ws
  current.destroy()
  if (ws === null || ws.readyState === WebSocket.CLOSED) return resolve()
  ws.addEventListener('close', () => resolve())
})

function onRaw (text) {
  let reply
  try {
    reply = JSON.parse(text)
  } catch {
    return
  }
  if (reply.type === 'save' && saveWaiters.has(reply.responseTo)) {
    saveWaiters.get(reply.responseTo)(reply)
    saveWaiters.delete(reply.responseTo)
  } else {
    emit({ event: 'raw', message: reply })
  }
}

// the frontend's save (yprovider.ts): varUint 2, varString "save", varUint saveId
const save = () => new Promise((resolve, reject) => {
  if (provider === null || provider.ws === null || !provider.wsconnected) return reject(new Error('not connected'))
  const saveId = ++lastSaveId
  saveWaiters.set(saveId, resolve)
  const encoder = encoding.createEncoder()
  encoding.writeVarUint(encoder, 2)
  encoding.writeVarString(encoder, 'save')
  encoding.writeVarUint(encoder, saveId)
  provider.ws.send(encoding.toUint8Array(encoder))
})

// -- commands -------------------------------------------------------------------------

const typeInto = (command) => {
  const cell = notebook.getCell(command.cell)
  if (cell === undefined) throw new Error(`no cell ${command.cell} (the notebook has ${notebook.cells.length})`)
  let at = command.at === undefined || command.at === 'end' ? cell.ysource.length : command.at
  for (const ch of command.text) {
    cell.updateSource(at, at, ch) // one transaction per keystroke, as CodeMirror's binding does
    at += ch.length
  }
}

async function run (command) {
  switch (command.op) {
    case 'type':
      typeInto(command)
      break
    case 'add_cell': {
      const cell = { cell_type: command.cell_type ?? 'code', source: command.source ?? '', metadata: {} }
      if (command.cell_id) cell.id = command.cell_id
      const index = command.index ?? notebook.cells.length
      const created = notebook.insertCell(index, cell)
      emit({ event: 'cell_added', id: command.id ?? null, cell_id: created.id, index })
      break
    }
    case 'disconnect':
      await disconnect()
      break
    case 'connect':
      await connect()
      break
    case 'save': {
      const reply = await save()
      emit({ event: 'saved', id: command.id ?? null, status: reply.status, reply })
      break
    }
    case 'content':
      emit({ event: 'content', cells: cellsOf(), notebook: notebook.toJSON() })
      break
    case 'exit':
      await finish(0)
      break
    default:
      throw new Error(`unknown op ${JSON.stringify(command.op)}`)
  }
  emit({ event: 'done', id: command.id ?? null, op: command.op })
}

let finishing = false
async function finish (code) {
  if (finishing) return
  finishing = true
  await Promise.race([disconnect(), new Promise((resolve) => setTimeout(resolve, 2000))])
  emit({ event: 'exit', code })
  process.exit(code)
}

setTimeout(() => {
  emit({ event: 'timeout', seconds: Number(args.timeout) })
  finish(3)
}, Number(args.timeout) * 1000)

process.on('uncaughtException', (err) => {
  emit({ event: 'error', message: String(err?.stack ?? err) })
  finish(1)
})

// Commands run one at a time, in order.
let queue = Promise.resolve()
const enqueue = (command) => {
  queue = queue.then(() => run(command)).catch((err) => {
    emit({ event: 'error', id: command.id ?? null, op: command.op, message: String(err?.message ?? err) })
  })
  return queue
}

enqueue({ op: 'connect', id: 'initial' })
for (const command of JSON.parse(args.commands)) enqueue(command)

const lines = createInterface({ input: process.stdin })
lines.on('line', (line) => {
  if (!line.trim()) return
  let command
  try {
    command = JSON.parse(line)
  } catch (err) {
    emit({ event: 'error', message: `not JSON: ${line.slice(0, 200)}` })
    return
  }
  enqueue(command)
})
lines.on('close', () => {
  // finish what was asked, but never hang on a connection that does not come
  Promise.race([queue, new Promise((resolve) => setTimeout(resolve, 5000))]).then(() => finish(0))
})
