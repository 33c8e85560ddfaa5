// Chat load of the cluster fault suite (tests/cluster/faults.py): the REAL ActionheroWebsocketClient
// (built from the npm packages in $ONAIR_AH_CLIENT_DIR, as tests/chat/client_flow.js builds it),
// connected through nginx.
//
// usage: node chat_load.js <config.json>
// config: {origin, room, listeners: N, senders: [{id, token}], intervalMs}
//
// Listeners are guests in the room; senders are verified members that `say` a numbered chat
// message every intervalMs (each below the 30 a minute of ONAIR_CHAT_MESSAGES_PER_MINUTE) and
// verify again after a reconnect. The script prints one JSON line per fact, with `t` = Date.now():
//   {"ev":"ready"}                                     every client connected and in the room
//   {"ev":"ok","text":T,"t"} / {"ev":"refused","text":T,"code":C,"t"} / {"ev":"noanswer","text":T,"t"}
//   {"ev":"recv","c":CLIENT,"text":T,"t"}               a listener got a chat message
//   {"ev":"down","c":CLIENT,"t"} / {"ev":"up","c":CLIENT,"t"}   disconnected / reconnected and re-joined
// A line "stop" on standard input stops the senders; 4 s later (for messages in flight) it prints
// {"ev":"done"} and exits.

'use strict'
const fs = require('fs')
const path = require('path')
const vm = require('vm')
const readline = require('readline')

const config = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'))
const modules = path.join(process.env.ONAIR_AH_CLIENT_DIR || '', 'node_modules')
const WebSocket = require(path.join(modules, 'ws'))
const origin = config.origin
const room = config.room

function emit (fact) {
  fact.t = Date.now()
  process.stdout.write(JSON.stringify(fact) + '\n')
}

function clientSource () {
  const Primus = require(path.join(modules, 'primus'))
  const primus = new Primus(require('http').createServer(), {
    transformer: 'websockets', pathname: '/primus', pingInterval: 30000
  })
  const lib = primus.library()
  let ah = fs.readFileSync(path.join(modules, 'actionhero/client/ActionheroWebsocketClient.js'), 'utf8')
  ah = ah.replace(/%%URL%%/g, origin)
  ah = ah.replace('%%DEFAULTS%%', "return { apiPath: '/api', cookieKey: 'sessionID', url: '" + origin + "' }")
  return lib + '\r\n\r\n\r\n;;;\r\n(function(exports){ \r\n' + ah +
    '\r\nexports.ActionheroWebsocketClient = ActionheroWebsocketClient; \r\n' +
    "})(typeof exports === 'undefined' ? window : exports);"
}

function browser () {
  const url = new URL(origin)
  const sandbox = {
    console, setTimeout, clearTimeout, setInterval, clearInterval, WebSocket,
    location: { origin, href: origin + '/', protocol: url.protocol, host: url.host, hostname: url.hostname, port: url.port, pathname: '/' },
    document: { cookie: '' },
    navigator: { userAgent: 'node' }
  }
  sandbox.window = sandbox
  sandbox.self = sandbox
  return vm.createContext(sandbox)
}

const context = browser()
vm.runInContext(clientSource(), context, { filename: 'ActionheroWebsocketClient.js' })
const Client = context.window.ActionheroWebsocketClient

function connect (name, onReconnect) {
  const client = new Client()
  client.on('disconnected', () => emit({ ev: 'down', c: name }))
  // The real client re-joins its rooms on reconnect (configure), then emits `reconnect`.
  client.on('reconnect', () => {
    Promise.resolve(onReconnect && onReconnect(client)).then(() => emit({ ev: 'up', c: name }))
  })
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(name + ' did not connect')), 10000)
    client.connect((error) => {
      clearTimeout(timer)
      if (error) reject(new Error(name + ': ' + error))
      else client.roomAdd(room, () => resolve(client))
    })
  })
}

// verify over the socket: the real client sends an action over HTTP (XMLHttpRequest) unless its
// state is `connected`, which it is only once the reconnect's welcome has arrived.
async function verify (client, sender) {
  for (let i = 0; i < 100 && client.state !== 'connected'; i++) {
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  if (client.state !== 'connected') return
  return new Promise(resolve => {
    const timer = setTimeout(resolve, 5000)
    client.action('verify', { memberID: sender.id, chatroom: room, Authorization: sender.token }, () => {
      clearTimeout(timer)
      resolve()
    })
  })
}

async function main () {
  const listeners = []
  for (let i = 0; i < config.listeners; i++) {
    const name = 'listener-' + i
    const client = await connect(name)
    client.on('say', (payload) => {
      try {
        const m = JSON.parse(payload.message)
        if (m.type === 'chat') emit({ ev: 'recv', c: name, text: m.text })
      } catch (e) {}
    })
    listeners.push(client)
  }
  const senders = []
  for (const sender of config.senders) {
    const client = await connect(sender.id, (c) => verify(c, sender))
    await verify(client, sender)
    senders.push({ client, sender, n: 0 })
  }
  emit({ ev: 'ready' })

  let sending = true
  const inFlight = new Set()
  const timers = senders.map((s, k) => setInterval(() => {
    if (!sending) return
    const text = 'm-' + k + '-' + (s.n++)
    const message = JSON.stringify({ type: 'chat', memberID: s.sender.id, name: s.sender.id.split('@')[0], text, textColor: '#FFF' })
    let answered = false
    inFlight.add(text)
    const timer = setTimeout(() => {
      if (!answered) { answered = true; inFlight.delete(text); emit({ ev: 'noanswer', text }) }
    }, 10000)
    s.client.say(room, message, (response) => {
      if (answered) return
      answered = true
      clearTimeout(timer)
      inFlight.delete(text)
      if (response && response.status === 'OK') emit({ ev: 'ok', text })
      else emit({ ev: 'refused', text, code: response && response.data ? response.data.code : (response && response.error) || null })
    })
  }, config.intervalMs))

  const rl = readline.createInterface({ input: process.stdin })
  rl.on('line', (line) => {
    if (line.trim() !== 'stop') return
    sending = false
    timers.forEach(clearInterval)
    setTimeout(() => {
      emit({ ev: 'done', inFlight: inFlight.size })
      for (const c of listeners.concat(senders.map(s => s.client))) {
        try { c.removeAllListeners('disconnected'); c.disconnect() } catch (e) {}
      }
      process.exit(0)
    }, 4000)
  })
}

main().catch((e) => {
  emit({ ev: 'fail', error: String(e && e.stack || e) })
  process.exit(1)
})
