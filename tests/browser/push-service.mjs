// web-push-testing (npm) as the push service of the tests: it checks each push's VAPID
// signature against the key the subscription was made with and decrypts its payload
// (RFC 8291, RFC 8292), as a browser's push service would. Started like its own
// bin/server.js, but listening on loopback only, and it stops by itself when its parent
// closes stdin (the test ended, however it ended).
// Usage: node push-service.mjs PORT   (prints "Server running on port PORT" when ready)
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const TestingServer = require('web-push-testing/src/server.js');
const { PushApiModel } = require('web-push-testing/src/PushApiModel.js');

const port = Number(process.argv[2]);
if (!Number.isInteger(port) || port <= 0) {
  console.error(`push-service: bad port ${process.argv[2]}`);
  process.exit(2);
}
const server = new TestingServer(new PushApiModel(), port);
server._server = server._app.listen(port, '127.0.0.1', () => console.log(`Server running on port ${port}`));
server._server.on('error', e => { console.error(String(e)); process.exit(1); });
server.setRequestHandlers();
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
