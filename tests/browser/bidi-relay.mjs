// Relays TCP connections from HOST:PORT to 127.0.0.1:PORT, run inside a network namespace so
// that a test outside it reaches the WebDriver BiDi endpoint of a Firefox inside it. The
// first chunk (the WebSocket handshake) gets a loopback Host header: Firefox's remote agent
// refuses any other. Usage: node bidi-relay.mjs HOST PORT
import net from 'node:net';

const [host, port] = [process.argv[2], Number(process.argv[3])];
net.createServer((client) => {
  const upstream = net.connect(port, '127.0.0.1');
  client.once('data', (first) => {
    upstream.write(first.toString('latin1').replace(/^Host: .*$/mi, `Host: 127.0.0.1:${port}`), 'latin1');
    client.pipe(upstream);
  });
  upstream.pipe(client);
  client.on('error', () => upstream.destroy());
  upstream.on('error', () => client.destroy());
}).listen(port, host, () => console.log('listening'));
