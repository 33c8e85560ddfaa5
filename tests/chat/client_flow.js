// The page flow of the gateway and chat description ("使用 actionheroWebsocketClient 連線
// chatroomSystem"), driven through a browser-shaped vm context, with either:
//   real  the real ActionheroWebsocketClient, built at test time from the npm packages in
//         $ONAIR_AH_CLIENT_DIR as actionhero's renderClientJS() builds it
//         (docs/chat.md#the-real-client-in-the-tests);
//   ours  onair's own compatible client script, fetched from the server.
//
// usage: node client_flow.js real|ours <origin> <config.json>
// config: {room, star, ben, amy: {id, token}, website, key}
// Prints one line per step; exits 1 at the first failed expectation.

'use strict'
const fs = require('fs')
const path = require('path')
const vm = require('vm')

const [mode, origin, configPath] = process.argv.slice(2)
const config = JSON.parse(fs.readFileSync(configPath, 'utf8'))
const modules = path.join(process.env.ONAIR_AH_CLIENT_DIR || '', 'node_modules')
const WebSocket = require(path.join(modules, 'ws'))

function fail (message) {
  console.log('FAIL ' + message)
  process.exit(1)
}

function step (message) {
  console.log('ok   ' + message)
}

async function clientSource () {
  if (mode === 'ours') {
    const res = await fetch(origin + '/public/javascript/ActionheroWebsocketClient.js')
    if (res.status !== 200) fail('client script: HTTP ' + res.status)
    return res.text()
  }
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
    console,
    setTimeout,
    clearTimeout,
    setInterval,
    clearInterval,
    WebSocket,
    location: { origin, href: origin + '/', protocol: url.protocol, host: url.host, hostname: url.hostname, port: url.port, pathname: '/' },
    document: { cookie: '' },
    navigator: { userAgent: 'node' }
  }
  sandbox.window = sandbox
  sandbox.self = sandbox
  return vm.createContext(sandbox)
}

function waitFor (client, event, predicate, ms, what) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { client.removeListener(event, handler); reject(new Error('timeout: ' + what)) }, ms)
    function handler (payload) {
      if (!predicate || predicate(payload)) {
        clearTimeout(timer)
        client.removeListener(event, handler)
        resolve(payload)
      }
    }
    client.on(event, handler)
  })
}

const said = (type, extra) => (p) => {
  try {
    const m = JSON.parse(p.message)
    return m.type === type && (!extra || extra(m, p))
  } catch (e) { return false }
}
const code = (c) => (p) => p && p.data && p.data.code === c
const sleep = (ms) => new Promise(resolve => setTimeout(resolve, ms))

async function gateway (action, query, token) {
  const res = await fetch(origin + '/api/action/' + action, {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ query: JSON.stringify(query), Authorization: token })
  })
  const body = await res.json()
  if (res.status !== 200) fail(action + ': ' + JSON.stringify(body))
  return body
}

async function backoffice (action, body) {
  const res = await fetch(origin + '/api/backoffice/' + action, {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(Object.assign({ website: config.website, key: config.key }, body))
  })
  if (res.status !== 200) fail(action + ': HTTP ' + res.status)
}

async function main () {
  const context = browser()
  vm.runInContext(await clientSource(), context, { filename: 'ActionheroWebsocketClient.js' })
  const Client = context.window.ActionheroWebsocketClient
  if (typeof Client !== 'function') fail('no ActionheroWebsocketClient')
  const room = config.room

  async function connect (name) {
    const client = new Client()
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(name + ' did not connect')), 5000)
      client.connect((error, details) => {
        clearTimeout(timer)
        if (error) reject(new Error(error))
        else resolve(details)
      })
    })
    if (client.state !== 'connected') fail(name + ' state ' + client.state)
    return client
  }
  function roomAdd (client) {
    return new Promise(resolve => client.roomAdd(room, resolve))
  }
  const chat = (who, text) => JSON.stringify({ type: 'chat', memberID: who.id, name: who.id.split('@')[0], text, textColor: '#FFF' })

  // Two clients, as two pages: connect, roomAdd, verify.
  const ben = await connect('ben')
  const amy = await connect('amy')
  step('two clients connected')
  const benAdd = await roomAdd(ben)
  await roomAdd(amy)
  if (!benAdd || benAdd.status !== 'OK') fail('roomAdd answered ' + JSON.stringify(benAdd))
  if (ben.rooms.indexOf(room) < 0) fail('client.rooms lacks the room')
  step('roomAdd')

  const bad = waitFor(ben, 'api', code(40302), 5000, '40302')
  ben.action('verify', { memberID: config.ben.id, chatroom: room, Authorization: 'not-a-token' })
  await bad
  step('verify with a bad token: 40302')

  const joined = waitFor(amy, 'say', said('joinRoom', m => m.member === config.ben.id), 5000, 'joinRoom')
  ben.action('verify', { memberID: config.ben.id, chatroom: room, Authorization: config.ben.token })
  amy.action('verify', { memberID: config.amy.id, chatroom: room, Authorization: config.amy.token })
  await joined
  step('verify; the room hears joinRoom')

  // say: both clients get it, from the sender's connection id.
  const heardByAmy = waitFor(amy, 'say', said('chat', m => m.text === 'Hello'), 5000, 'amy hears')
  const heardByBen = waitFor(ben, 'say', said('chat', m => m.text === 'Hello'), 5000, 'ben hears')
  ben.say(room, chat(config.ben, 'Hello'))
  const [a, b] = await Promise.all([heardByAmy, heardByBen])
  if (a.from !== ben.id || b.from !== ben.id) fail('from is not the sender id: ' + a.from + ' vs ' + ben.id)
  if (a.room !== room || typeof a.sentAt !== 'number') fail('say payload ' + JSON.stringify(a))
  step('say reaches both clients')

  // Every system code.
  const guest = await connect('guest')
  await roomAdd(guest)
  let p = waitFor(guest, 'api', code(40101), 5000, '40101')
  guest.say(room, chat(config.ben, 'not verified'))
  await p
  step('40101 say before verify')
  p = waitFor(ben, 'api', code(40305), 5000, '40305')
  ben.say(room, chat(config.amy, 'in Amy\'s name'))
  await p
  step('40305 another memberID')
  p = waitFor(ben, 'api', code(40306), 5000, '40306')
  ben.say(room, chat(config.ben, 'see www.example.com'))
  await p
  step('40306 URL from a member')
  await backoffice('SetMaintenance', { enabled: true })
  // The same flow runs against actionhero and onair: neither tells a client when a server's rules
  // follower has applied the switch, so there is no condition to wait on; 300 ms is ample.
  await sleep(300)
  p = waitFor(ben, 'api', code(40308), 5000, '40308')
  ben.say(room, chat(config.ben, 'during maintenance'))
  await p
  await backoffice('SetMaintenance', { enabled: false })
  // As above: the switch back reaches the rules follower without a signal to the client.
  await sleep(300)
  step('40308 maintenance')

  const star = await connect('star')
  await roomAdd(star)
  star.action('verify', { memberID: config.star.id, chatroom: room, Authorization: config.star.token })
  // The verify is sent without a callback, as the seed's front end does; its answer is not
  // awaited, so the pause lets it land before the streamer moderates.
  await sleep(300)
  await new Promise(resolve => star.action('mute', { memberID: config.amy.id, chatroom: room, seconds: 1 }, resolve))
  // The mute is answered before every instance's rules follower has it; nothing tells a client.
  await sleep(300)
  p = waitFor(amy, 'api', code(40303), 5000, '40303')
  amy.say(room, chat(config.amy, 'muted?'))
  await p
  // The 1 s mute must run out on the server's wall clock: the peer (actionhero) has no clock a
  // test can move, so this waits for real.
  await sleep(1000)
  const afterMute = waitFor(ben, 'say', said('chat', m => m.text === 'mute over'), 5000, 'mute over')
  amy.say(room, chat(config.amy, 'mute over'))
  await afterMute
  step('40303 a temporary mute that ends')
  await new Promise(resolve => star.action('mute', { memberID: config.amy.id, chatroom: room }, resolve))
  // As above: the rules follower applies the mute without a signal to the client.
  await sleep(300)
  p = waitFor(amy, 'api', code(40304), 5000, '40304')
  amy.say(room, chat(config.amy, 'muted for good?'))
  await p
  await new Promise(resolve => star.action('unmute', { memberID: config.amy.id, chatroom: room }, resolve))
  step('40304 mute')

  // A gift from the gateway reaches the room as gift and giftRank.
  const gift = waitFor(amy, 'say', said('gift', m => m.presenter === config.ben.id), 5000, 'gift')
  const rank = waitFor(amy, 'say', said('giftRank'), 5000, 'giftRank')
  await gateway('sendGift', { giftID: 1, giftCount: 2, memberID: config.ben.id, gameID: config.star.id, agentID: room.split('-')[2] }, config.ben.token)
  const [g, r] = await Promise.all([gift, rank])
  if (g.from !== '0') fail('gift from ' + g.from)
  const ranking = JSON.parse(r.message)
  if (ranking.rankState !== 'NEW' || ranking.rankingList[0].memberId !== config.ben.id) fail('giftRank ' + r.message)
  step('gift and giftRank')

  // A streamer's start reaches a follower as sub.
  await gateway('follow', { streamerID: config.star.id }, config.ben.token)
  // The follow reaches the followers read model (which routes 'sub') in the background; the
  // client sees nothing of it, so the pause lets it land before the stream starts.
  await sleep(500)
  const sub = waitFor(ben, 'say', said('sub', m => m.streamer === config.star.id && m.status === 'start'), 5000, 'sub')
  await gateway('startStream', {}, config.star.token)
  await sub
  step('sub start to a follower')

  // A ban closes Amy's socket for good: no reconnect.
  let reconnected = false
  amy.on('reconnect', () => { reconnected = true })
  const gone = waitFor(amy, 'disconnected', null, 5000, 'disconnected after ban')
  star.action('ban', { memberID: config.amy.id, chatroom: room })
  await gone
  // This proves an absence (no reconnect after a ban): it waits out more than the client's
  // first reconnect delay rather than a condition.
  await sleep(1500)
  if (reconnected) fail('the banned client reconnected')
  step('a ban closes the socket without reconnect')
  const amy2 = await connect('amy again')
  await roomAdd(amy2)
  p = waitFor(amy2, 'api', code(40301), 5000, '40301')
  amy2.action('verify', { memberID: config.amy.id, chatroom: room, Authorization: config.amy.token })
  await p
  amy2.disconnect()
  step('40301 banned from the room')

  if (mode === 'ours') {
    // A dropped connection (no server::close): our client reconnects and re-joins its rooms.
    const oldId = ben.id
    const back = waitFor(ben, 'reconnect', null, 5000, 'reconnect')
    ben._ws.close()
    await back
    // The client re-joins its rooms after 'reconnect' with no event of its own to wait on.
    await sleep(1000)
    if (ben.id === oldId) fail('no new connection after the drop')
    if (ben.rooms.indexOf(room) < 0) fail('rooms after reconnect: ' + JSON.stringify(ben.rooms))
    const heard = waitFor(ben, 'say', said('chat', m => m.text === 'after the drop'), 5000, 'say after reconnect')
    star.say(room, chat(config.star, 'after the drop'))
    await heard
    step('reconnects and re-joins its rooms')
  }

  for (const c of [ben, guest, star]) c.disconnect()
  console.log('DONE')
  process.exit(0)
}

main().catch(e => fail(e.stack || String(e)))
