import { startServer } from '../helpers/server.ts';
const s = await startServer({ users: { romeo: 'r0meo-pass', juliet: 'jul1et-pass', nurse: 'nurse-pass' } });
console.log(`PORT ${s.c2sPort} DIR ${s.dir}`);
process.on('SIGTERM', () => { void s.destroy().then(() => process.exit(0)); });
setInterval(() => { if (process.env.SHOWLOG) process.stdout.write(s.output); s.output=''; }, 1000);
