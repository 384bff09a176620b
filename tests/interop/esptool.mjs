// Espressif's own flasher (the npm package esptool-js, Apache-2.0) driving an ESP32 serial bootloader behind a TCP port,
// unchanged: connect and sync, detect the chip, upload esptool-js's own flasher stub, switch baud rate, write an image
// compressed, verify it by MD5, read it back through the stub. The Web Serial port esptool-js expects is stood in for by
// a TCP socket (readable/writable streams, no modem lines, in-place baud change).
//
// Usage: node esptool.mjs <host> <port> <offset> <image-file>
// Prints one JSON line per step ({"event":"chip","name":"ESP32-C3"}, ...) and {"event":"error","message":...} on failure.
import net from "node:net";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { ESPLoader, Transport } from "esptool-js";

const [host, port, offsetText, imagePath] = process.argv.slice(2);
const offset = Number(offsetText);
const image = new Uint8Array(readFileSync(imagePath));
const emit = (event, fields = {}) => process.stdout.write(JSON.stringify({ event, ...fields }) + "\n");
// esptool-js traces some events with console.log: keep standard output for the JSON lines.
console.log = (...parts) => process.stderr.write(parts.join(" ") + "\n");

/** A Web Serial SerialPort over a TCP socket: what esptool-js's Transport reads, writes and reopens. */
class TcpSerialPort {
  constructor(host, port) {
    this.host = host;
    this.port = port;
    this.readable = null;
    this.writable = null;
    this.socket = null;
  }

  getInfo() {
    return {};
  }

  async open() {
    const socket = net.createConnection({ host: this.host, port: this.port });
    socket.setNoDelay(true);
    await new Promise((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("error", reject);
    });
    this.socket = socket;
    this.readable = new ReadableStream({
      start(controller) {
        socket.on("data", (chunk) => controller.enqueue(new Uint8Array(chunk)));
        socket.on("close", () => {
          try {
            controller.close();
          } catch {
            // already closed
          }
        });
        socket.on("error", () => {});
      },
      cancel() {
        socket.destroy();
      },
    });
    this.writable = new WritableStream({
      write(chunk) {
        return new Promise((resolve, reject) => socket.write(Buffer.from(chunk), (error) => (error ? reject(error) : resolve())));
      },
    });
  }

  async close() {
    this.socket?.destroy();
    this.socket = null;
    this.readable = null;
    this.writable = null;
  }

  // A TCP byte stream has no modem lines: the board behind it waits in its bootloader.
  async setSignals() {}

  // The baud rate is the far end's business on a TCP bridge; changed in place, nothing to reopen.
  async setBaudRate() {}
}

const md5 = (bytes) => createHash("md5").update(bytes).digest("hex");
const terminal = { clean() {}, writeLine() {}, write() {} };

try {
  const transport = new Transport(new TcpSerialPort(host, Number(port)), false);
  const loader = new ESPLoader({ transport, baudrate: 921600, romBaudrate: 115200, terminal, debugLogging: false });
  const description = await loader.main("no_reset");
  emit("chip", { name: loader.chip.CHIP_NAME, description });
  emit("stub", { running: loader.IS_STUB });
  const flashId = await loader.readFlashId();
  emit("flash", { id: flashId });

  await loader.writeFlash({
    fileArray: [{ data: image, address: offset }],
    flashMode: "keep",
    flashFreq: "keep",
    flashSize: "keep",
    eraseAll: false,
    compress: true,
    calculateMD5Hash: md5,
  });
  emit("written", { md5: md5(image), length: image.length });

  const flashMd5 = await loader.flashMd5sum(offset, image.length);
  emit("verified", { md5: flashMd5 });

  const back = await loader.readFlash(offset, image.length);
  emit("read", { md5: md5(back), length: back.length });

  await transport.disconnect();
  emit("done");
  process.exit(0);
} catch (error) {
  emit("error", { message: String(error?.message ?? error), name: error?.name });
  process.exit(1);
}
