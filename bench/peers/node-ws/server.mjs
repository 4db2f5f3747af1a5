// The Node.js peer of rtgw's benchmark: a WebSocket broadcast server written
// the way a JS team typically writes one (see shared field report 003: an
// express app with cors and express.json(), POST /broadcast from the backend,
// "project rooms" of client ids, and JSON.stringify(message) for every socket
// of the room). Nothing here is tuned for the benchmark; only LOG_LEVEL=warn
// is set by bench/run.sh so that a console.log per broadcast does not dominate.
//
//   PORT=3001 node server.mjs
//   ws://127.0.0.1:3001/ws          → {"type":"CONNECTION_ESTABLISHED","clientId":…}
//   send {"type":"JOIN_PROJECT","projectId":"p1"} → {"type":"PROJECT_JOINED","projectId":"p1"}
//   POST /broadcast {"type","payload","projectId"} → every client of the room gets
//        {"type","payload","operationId","timestamp"}
import http from 'node:http';
import express from 'express';
import cors from 'cors';
import { WebSocketServer } from 'ws';

const PORT = Number(process.env.PORT || 3001);
const HOST = process.env.HOST || '127.0.0.1';
const LOG_LEVEL = process.env.LOG_LEVEL || 'info';
const levels = { error: 0, warn: 1, info: 2, debug: 3 };
const log = (lvl, ...a) => { if (levels[lvl] <= levels[LOG_LEVEL]) console.log(...a); };

const app = express();
app.use(cors({ origin: process.env.ALLOWED_ORIGINS?.split(',') || true, credentials: true }));
app.use(express.json({ limit: '1mb' }));

const clients = new Map();      // clientId -> { ws, projects:Set }
const projectRooms = new Map(); // projectId -> Set<clientId>
const started = Date.now();
let nextId = 1;

function broadcastToProject(projectId, message, excludeClientId = null) {
  const roomClients = projectRooms.get(projectId);
  if (!roomClients) return 0;
  let n = 0;
  roomClients.forEach((clientId) => {
    if (clientId === excludeClientId) return;
    const client = clients.get(clientId);
    if (client && client.ws.readyState === 1) { // WebSocket.OPEN
      client.ws.send(JSON.stringify(message));
      n++;
    }
  });
  log('info', `Broadcasted to ${n} clients in project ${projectId}`);
  return n;
}

app.get('/health', (req, res) => {
  res.json({ status: 'healthy', timestamp: Date.now(), clients: clients.size,
             projects: projectRooms.size, uptime: (Date.now() - started) / 1000 });
});

app.post('/broadcast', (req, res) => {
  const { type, payload, projectId, operationId, timestamp } = req.body || {};
  if (!type || !projectId) return res.status(400).json({ success: false, error: 'type and projectId are required' });
  const message = { type, payload, operationId, timestamp };
  broadcastToProject(projectId, message);
  res.json({ success: true, projectId, clientCount: projectRooms.get(projectId)?.size || 0 });
});

const server = http.createServer(app);
const wss = new WebSocketServer({ server, path: '/ws' });

wss.on('connection', (ws) => {
  const clientId = `client_${nextId++}`;
  clients.set(clientId, { ws, projects: new Set() });
  log('info', `New WebSocket connection: ${clientId}`);
  ws.send(JSON.stringify({ type: 'CONNECTION_ESTABLISHED', clientId, timestamp: Date.now() }));

  ws.on('message', (raw) => {
    let msg;
    try { msg = JSON.parse(raw.toString()); } catch { return; }
    const client = clients.get(clientId);
    if (!client) return;
    if (msg.type === 'JOIN_PROJECT' && msg.projectId) {
      if (!projectRooms.has(msg.projectId)) projectRooms.set(msg.projectId, new Set());
      projectRooms.get(msg.projectId).add(clientId);
      client.projects.add(msg.projectId);
      log('info', `Client ${clientId} joined project ${msg.projectId}`);
      ws.send(JSON.stringify({ type: 'PROJECT_JOINED', projectId: msg.projectId, operationId: msg.operationId }));
    } else if (msg.type === 'LEAVE_PROJECT' && msg.projectId) {
      projectRooms.get(msg.projectId)?.delete(clientId);
      client.projects.delete(msg.projectId);
    }
  });

  ws.on('close', () => {
    const client = clients.get(clientId);
    if (client) {
      for (const p of client.projects) {
        const room = projectRooms.get(p);
        room?.delete(clientId);
        if (room && room.size === 0) projectRooms.delete(p);
      }
    }
    clients.delete(clientId);
    log('info', `Client ${clientId} disconnected`);
  });
  ws.on('error', () => {});
});

server.listen(PORT, HOST, () => log('warn', `node-ws peer listening on ${HOST}:${PORT}`));
process.on('SIGTERM', () => { server.close(); process.exit(0); });
