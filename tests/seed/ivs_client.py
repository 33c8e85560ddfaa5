"""The Python example of the Stage API description ("Python 範例"), its IVSClient logic unchanged.

Only the entry point differs: the base URL and API key come from the command line, the heartbeat
interval and the viewing time are shortened, and the answers are printed as one JSON line
(prefixed RESULT) for the test that runs this file.
"""
import json
import sys

import requests
import time
import threading

API_URL = 'http://localhost:3000'
API_KEY = 'your-api-key'

class IVSClient:
    def __init__(self, api_url, api_key):
        self.api_url = api_url
        self.headers = {
            'x-api-key': api_key,
            'Content-Type': 'application/json'
        }
        self.heartbeat_thread = None
        self.stop_heartbeat = False
    
    def get_viewer_token(self, user_id, attributes=None):
        """獲取觀眾 Token"""
        response = requests.post(
            f'{self.api_url}/api/token/viewer',
            headers=self.headers,
            json={
                'userId': user_id,
                'attributes': attributes or {}
            }
        )
        return response.json()
    
    def send_heartbeat(self, user_id, stage_arn):
        """發送心跳"""
        response = requests.post(
            f'{self.api_url}/api/viewer/heartbeat',
            headers=self.headers,
            json={
                'userId': user_id,
                'stageArn': stage_arn
            }
        )
        return response.json()
    
    def start_heartbeat_service(self, user_id, stage_arn, interval=30):
        """啟動心跳服務"""
        def heartbeat_loop():
            while not self.stop_heartbeat:
                try:
                    result = self.send_heartbeat(user_id, stage_arn)
                    print(f'心跳成功: {result}')
                except Exception as e:
                    print(f'心跳失敗: {e}')
                # The heartbeat period the seed's client beats at; not a wait.
                time.sleep(interval)
        
        self.heartbeat_thread = threading.Thread(target=heartbeat_loop)
        self.heartbeat_thread.start()
    
    def stop_heartbeat_service(self):
        """停止心跳服務"""
        self.stop_heartbeat = True
        if self.heartbeat_thread:
            self.heartbeat_thread.join()
    
    def get_stats(self):
        """獲取統計資訊"""
        response = requests.get(
            f'{self.api_url}/api/stats',
            headers=self.headers
        )
        return response.json()

# 使用範例
if __name__ == '__main__':
    API_URL, API_KEY = sys.argv[1], sys.argv[2]
    client = IVSClient(API_URL, API_KEY)
    
    # 獲取 Token
    token_data = client.get_viewer_token(
        'viewer-001',
        {'displayName': '測試觀眾'}
    )
    
    if token_data['success']:
        stage_arn = token_data['data']['stageArn']
        
        # 啟動心跳 (every 0.5 s instead of 30 s)
        client.start_heartbeat_service('viewer-001', stage_arn, interval=0.5)
        
        # 模擬觀看 (2 s instead of 5 minutes)
        # Watches for 2 s while the heartbeat thread beats (the seed's example watches 5 minutes).
        time.sleep(2)
        
        # 停止心跳
        client.stop_heartbeat_service()

    print('RESULT ' + json.dumps({
        'token': token_data,
        'heartbeat': client.send_heartbeat('viewer-001', token_data['data']['stageArn']),
        'stats': client.get_stats(),
    }, ensure_ascii=False))
