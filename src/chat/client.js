/*
 * onair chat client: the API of ActionheroWebsocketClient (connect, roomAdd, roomLeave, roomView,
 * action, say, detailsView, disconnect; events connected, disconnected, reconnect, reconnecting,
 * welcome, api, say, alert, message, error), speaking the Primus "json" framing of onair's
 * /primus socket directly, with no other library.
 *
 * Unlike the original it re-joins its rooms after every automatic reconnect, and it emits
 * `reconnecting` when it schedules one. A `"primus::server::close"` from the server (a ban, a
 * `quit`) ends the connection for good.
 *
 *   var client = new ActionheroWebsocketClient({url: 'https://chat.example.com'})
 *   client.connect(function (error, details) { client.roomAdd(room, function () { ... }) })
 */
;(function (exports) {
  'use strict'

  function Emitter () { this._events = {} }
  Emitter.prototype.on = function (event, fn) {
    (this._events[event] = this._events[event] || []).push(fn)
    return this
  }
  Emitter.prototype.addListener = Emitter.prototype.on
  Emitter.prototype.once = function (event, fn) {
    var self = this
    function wrapper () { self.removeListener(event, wrapper); fn.apply(self, arguments) }
    wrapper.listener = fn
    return this.on(event, wrapper)
  }
  Emitter.prototype.removeListener = function (event, fn) {
    var list = this._events[event]
    if (!list) return this
    this._events[event] = list.filter(function (f) { return f !== fn && f.listener !== fn })
    return this
  }
  Emitter.prototype.off = Emitter.prototype.removeListener
  Emitter.prototype.removeAllListeners = function (event) {
    if (event === undefined) this._events = {}
    else delete this._events[event]
    return this
  }
  Emitter.prototype.emit = function (event) {
    var list = (this._events[event] || []).slice()
    var args = Array.prototype.slice.call(arguments, 1)
    for (var i = 0; i < list.length; i++) list[i].apply(this, args)
    return list.length > 0
  }

  var PING_TIMEOUT_MS = 45000 // the server pings every 30 s; 1.5 x that without one is a dead link
  var RECONNECT_MIN_MS = 500
  var RECONNECT_MAX_MS = 30000

  function ActionheroWebsocketClient (options) {
    Emitter.call(this)
    this.callbacks = {}
    this.id = null
    this.rooms = []
    this.state = 'disconnected'
    this.messageId = 0
    this.options = this.defaults()
    for (var key in options) this.options[key] = options[key]
    this._queue = []
    this._attempt = 0
  }
  ActionheroWebsocketClient.prototype = Object.create(Emitter.prototype)
  ActionheroWebsocketClient.prototype.constructor = ActionheroWebsocketClient

  ActionheroWebsocketClient.prototype.defaults = function () {
    return { apiPath: '/api', cookieKey: 'sessionID', url: '%%URL%%' || window.location.origin }
  }

  ActionheroWebsocketClient.prototype.getCookie = function (name) {
    if (typeof document === 'undefined' || !document.cookie) return
    var match = document.cookie.match(new RegExp(name + '=([^;]+)'))
    if (match) return match[1]
  }

  ActionheroWebsocketClient.prototype.socketUrl = function () {
    var base = this.options.url.replace(/^http/, 'ws').replace(/^(wss?:\/\/[^/?#]+).*$/, '$1')
    var query = []
    var cookie = this.options.cookieKey && this.getCookie(this.options.cookieKey)
    if (cookie) query.push(this.options.cookieKey + '=' + encodeURIComponent(cookie))
    query.push('_primuscb=' + Date.now().toString(36) + Math.random().toString(36).slice(2, 6))
    return base + '/primus?' + query.join('&')
  }

  ActionheroWebsocketClient.prototype.connect = function (callback) {
    var self = this
    self._ended = false
    self._serverClosed = false
    self._open(function (details) {
      self.state = 'connected'
      self.emit('connected')
      if (typeof callback === 'function') callback(null, details)
    }, callback)
  }

  ActionheroWebsocketClient.prototype._open = function (onReady, onFail) {
    var self = this
    var ws
    try {
      ws = new WebSocket(self.socketUrl())
    } catch (e) {
      if (typeof onFail === 'function') onFail(String(e))
      return
    }
    self._ws = ws
    ws.onopen = function () {
      self._attempt = 0
      self._armPingTimeout()
      var queued = self._queue
      self._queue = []
      queued.forEach(function (text) { ws.send(text) })
      self.configure(onReady)
    }
    ws.onmessage = function (event) { self._receive(event.data) }
    ws.onerror = function (error) { self.emit('error', error) }
    ws.onclose = function () {
      clearTimeout(self._pingTimer)
      if (self._ws !== ws) return
      self._ws = null
      if (self.state !== 'disconnected') {
        self.state = 'disconnected'
        self.emit('disconnected')
      }
      if (!self._ended && !self._serverClosed) self._scheduleReconnect()
    }
  }

  ActionheroWebsocketClient.prototype._armPingTimeout = function () {
    var self = this
    clearTimeout(self._pingTimer)
    self._pingTimer = setTimeout(function () {
      if (self._ws) self._ws.close()
    }, PING_TIMEOUT_MS)
  }

  ActionheroWebsocketClient.prototype._scheduleReconnect = function () {
    var self = this
    var delay = Math.min(RECONNECT_MAX_MS, RECONNECT_MIN_MS * Math.pow(2, self._attempt))
    self._attempt++
    self.emit('reconnecting', { attempt: self._attempt, delay: delay })
    self._reconnectTimer = setTimeout(function () {
      if (self._ended) return
      self.emit('reconnect')
      // Rejoins every room it knew of (configure), then reports itself connected again.
      self._open(function () { self.state = 'connected' })
    }, delay)
  }

  ActionheroWebsocketClient.prototype._receive = function (text) {
    var data
    try { data = JSON.parse(text) } catch (e) { this.emit('error', e); return }
    if (typeof data === 'string') {
      if (data.indexOf('primus::ping::') === 0) {
        this._armPingTimeout()
        this._write(JSON.stringify('primus::pong::' + data.slice('primus::ping::'.length)))
      } else if (data === 'primus::server::close') {
        this._serverClosed = true
      }
      return
    }
    this.handleMessage(data)
  }

  ActionheroWebsocketClient.prototype._write = function (text) {
    if (this._ws && this._ws.readyState === 1) this._ws.send(text)
    else this._queue.push(text)
  }

  ActionheroWebsocketClient.prototype.configure = function (callback) {
    var self = this
    self.rooms.forEach(function (room) { self.send({ event: 'roomAdd', room: room }) })
    self.detailsView(function (details) {
      self.id = details.data.id
      self.fingerprint = details.data.fingerprint
      self.rooms = details.data.rooms
      if (typeof callback === 'function') callback(details)
    })
  }

  ActionheroWebsocketClient.prototype.send = function (args, callback) {
    this.messageId++
    args.messageId = args.params
      ? (args.params.messageId || args.messageId || this.messageId)
      : (args.messageId || this.messageId)
    if (typeof callback === 'function') this.callbacks[args.messageId] = callback
    this._write(JSON.stringify(args))
  }

  ActionheroWebsocketClient.prototype.handleMessage = function (message) {
    this.emit('message', message)
    var messageId = message.messageId
    if (message.context === 'response') {
      if (typeof this.callbacks[messageId] === 'function') this.callbacks[messageId](message)
      delete this.callbacks[messageId]
    } else if (message.context === 'user') {
      this.emit('say', message)
    } else if (message.context === 'alert') {
      this.emit('alert', message)
    } else if (message.welcome && message.context === 'api') {
      this.welcomeMessage = message.welcome
      this.emit('welcome', message)
    } else if (message.context === 'api') {
      this.emit('api', message)
    }
  }

  ActionheroWebsocketClient.prototype.action = function (action, params, callback) {
    if (!callback && typeof params === 'function') { callback = params; params = null }
    if (!params) params = {}
    params.action = action
    this.send({ event: 'action', params: params }, callback)
  }

  ActionheroWebsocketClient.prototype.say = function (room, message, callback) {
    this.send({ event: 'say', room: room, message: message }, callback)
  }

  ActionheroWebsocketClient.prototype.detailsView = function (callback) {
    this.send({ event: 'detailsView' }, callback)
  }

  ActionheroWebsocketClient.prototype.roomView = function (room, callback) {
    this.send({ event: 'roomView', room: room }, callback)
  }

  ActionheroWebsocketClient.prototype.roomAdd = function (room, callback) {
    var self = this
    self.send({ event: 'roomAdd', room: room }, function (data) {
      self.configure(function () { if (typeof callback === 'function') callback(data) })
    })
  }

  ActionheroWebsocketClient.prototype.roomLeave = function (room, callback) {
    var self = this
    var index = self.rooms.indexOf(room)
    if (index > -1) self.rooms.splice(index, 1)
    self.send({ event: 'roomLeave', room: room }, function (data) {
      self.configure(function () { if (typeof callback === 'function') callback(data) })
    })
  }

  ActionheroWebsocketClient.prototype.disconnect = function () {
    this._ended = true
    clearTimeout(this._reconnectTimer)
    clearTimeout(this._pingTimer)
    this.state = 'disconnected'
    if (this._ws) { var ws = this._ws; this._ws = null; ws.close() }
    this.emit('disconnected')
  }

  exports.ActionheroWebsocketClient = ActionheroWebsocketClient
})(typeof exports === 'undefined' ? window : exports)
