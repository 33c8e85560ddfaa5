// The seeds' browser clients, run from a page of another origin (tests/api/dashboard.rs serves
// this page on its own loopback port and starts onair with ONAIR_CORS_ORIGINS = that origin).
// config.js sets window.ONAIR = {api, apiKey, memberId, password, streamerId, agentId, giftId}.
"use strict";

// ---- the Stage API description's "JavaScript 範例 / 使用 Fetch API", with the address and key from
// config.js.

// 生成觀眾 Token
async function getViewerToken(userId) {
  const response = await fetch(ONAIR.api + '/api/token/viewer', {
    method: 'POST',
    headers: {
      'x-api-key': ONAIR.apiKey,
      'Content-Type': 'application/json'
    },
    body: JSON.stringify({
      userId: userId,
      attributes: {
        displayName: '觀眾' + userId
      }
    })
  });

  const data = await response.json();

  if (data.success) {
    console.log('Token:', data.data.token.slice(0, 12) + '…');
    console.log('Stage:', data.data.stageArn);
    console.log('當前觀眾數:', data.data.currentViewers);
    // An exposed header (Access-Control-Expose-Headers): a cross-origin page may read it.
    data.data.eventSequence = response.headers.get('x-event-sequence');
    return data.data;
  } else {
    console.error('錯誤:', data.message);
    throw new Error(data.message);
  }
}

// 發送心跳
async function sendHeartbeat(userId, stageArn) {
  const response = await fetch(ONAIR.api + '/api/viewer/heartbeat', {
    method: 'POST',
    headers: {
      'x-api-key': ONAIR.apiKey,
      'Content-Type': 'application/json'
    },
    body: JSON.stringify({
      userId: userId,
      stageArn: stageArn
    })
  });

  return await response.json();
}

// ---- the gateway and chat description's "Client Gateway": `axios.create` with a request
// interceptor that puts the member's Authorization into the body. The same calls without axios: a
// minimal axios-like service over XMLHttpRequest (what axios uses in browsers).

function createService(options) {
  const requestInterceptors = [];
  return {
    interceptors: { request: { use: (onFulfilled) => requestInterceptors.push(onFulfilled) } },
    post(url, data) {
      let config = { url, data, headers: Object.assign({}, options.headers), timeout: options.timeout };
      for (const intercept of requestInterceptors) config = intercept(config);
      return new Promise((resolve, reject) => {
        const xhr = new XMLHttpRequest();
        xhr.open('POST', options.baseURL + config.url);
        xhr.timeout = config.timeout;
        for (const [name, value] of Object.entries(config.headers)) xhr.setRequestHeader(name, value);
        xhr.onload = () => resolve({ status: xhr.status, data: JSON.parse(xhr.responseText) });
        xhr.onerror = () => reject(new Error('network error (a refused cross-origin call looks like this)'));
        xhr.ontimeout = () => reject(new Error('timeout'));
        xhr.send(JSON.stringify(config.data));
      });
    }
  };
}

// The seed's Store(), reduced to what the interceptor reads.
const userStore = { state: { user: { userState: { Authorization: '' } } } };
const Store = () => userStore;

const service = createService({
  baseURL: ONAIR.api,
  timeout: 5000,
  headers: { 'Content-Type': 'application/json' }
});

// Request interceptors
service.interceptors.request.use(
  config => {
    const store = Store();
    const authorization = store.state.user.userState.Authorization;
    if (authorization) {
      config.data['Authorization'] = authorization;
    }
    return config;
  }
);

// ---- run both, report to the test

async function run() {
  const results = {};
  try {
    const token = await getViewerToken('seed-viewer-1');
    const beat = await sendHeartbeat('seed-viewer-1', token.stageArn);
    results.stageApi = {
      ok: Boolean(token.token) && beat.success === true,
      currentViewers: token.currentViewers,
      eventSequence: token.eventSequence,
      heartbeat: beat.success
    };
  } catch (e) {
    results.stageApi = { ok: false, error: String(e) };
  }
  try {
    const login = await service.post('/api/action/loginAction', {
      query: JSON.stringify({ memberID: ONAIR.memberId, password: ONAIR.password })
    });
    userStore.state.user.userState.Authorization = login.data.data.Authorization;
    const gift = await service.post('/api/action/sendGift', {
      query: JSON.stringify({
        giftID: ONAIR.giftId, giftCount: 1, memberID: ONAIR.memberId,
        gameID: ONAIR.streamerId, agentID: ONAIR.agentId
      })
    });
    results.gateway = {
      ok: login.status === 200 && Boolean(login.data.data.Authorization) && gift.status === 200,
      loginStatus: login.status,
      giftStatus: gift.status,
      gift: gift.data
    };
  } catch (e) {
    results.gateway = { ok: false, error: String(e) };
  }
  document.getElementById('results').textContent = JSON.stringify(results, null, 2);
  document.body.dataset.done = '1';
}

run();
