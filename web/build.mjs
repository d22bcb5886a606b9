// Builds the web UI into dist/: one ES-module bundle for the app (hls.js split into its own chunk,
// loaded only by the player), one stylesheet, every name content-hashed so the server can cache
// them for good; index.html points at them. Every text asset also gets .br and .gz copies, which
// the server sends to browsers that accept them.
//
//   node build.mjs            production build (minified, source maps beside the bundles)
//   node build.mjs --watch    rebuild on change (reload the page yourself)

import * as esbuild from 'esbuild';
import { mkdir, readFile, rm, writeFile, copyFile, readdir } from 'node:fs/promises';
import { brotliCompressSync, gzipSync, constants } from 'node:zlib';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.dirname(fileURLToPath(import.meta.url));
const dist = path.join(root, 'dist');
const watch = process.argv.includes('--watch');

const options = {
  absWorkingDir: root,
  entryPoints: { app: 'src/main.js', style: 'src/style.css' },
  bundle: true,
  splitting: true,
  format: 'esm',
  target: ['es2020', 'chrome90', 'firefox90', 'safari15'],
  minify: !watch,
  sourcemap: 'linked',
  outdir: path.join(dist, 'assets'),
  entryNames: '[name]-[hash]',
  chunkNames: '[name]-[hash]',
  assetNames: '[name]-[hash]',
  metafile: true,
  legalComments: 'linked',
  logLevel: 'warning',
};

async function writeShell(metafile) {
  const outputs = Object.entries(metafile.outputs);
  const find = (entry) => {
    const found = outputs.find(([, o]) => o.entryPoint === entry);
    if (!found) throw new Error(`no output for ${entry}`);
    return '/' + path.relative(dist, path.join(root, found[0])).split(path.sep).join('/');
  };
  const template = await readFile(path.join(root, 'index.html'), 'utf8');
  const html = template.replace('/src/style.css', find('src/style.css')).replace('/src/main.js', find('src/main.js'));
  await writeFile(path.join(dist, 'index.html'), html);
  await copyFile(path.join(root, 'public', 'favicon.svg'), path.join(dist, 'favicon.svg'));
  if (!watch) await precompress(path.join(dist, 'assets'));
  const size = (file) => outputs.find(([name]) => name.endsWith(file))?.[1].bytes;
  const app = find('src/main.js');
  console.log(`web UI built into ${path.relative(process.cwd(), dist) || '.'}: ${app} (${size(path.basename(app))} bytes)`);
}

async function precompress(dir) {
  for (const name of await readdir(dir)) {
    if (!/\.(js|css|svg|txt)$/.test(name)) continue;
    const data = await readFile(path.join(dir, name));
    if (data.length < 1024) continue;
    await writeFile(path.join(dir, `${name}.br`), brotliCompressSync(data, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }));
    await writeFile(path.join(dir, `${name}.gz`), gzipSync(data, { level: 9 }));
  }
}

await rm(dist, { recursive: true, force: true });
await mkdir(path.join(dist, 'assets'), { recursive: true });
if (watch) {
  const shell = { name: 'ferrocast-shell', setup: (build) => build.onEnd((result) => (result.errors.length ? undefined : writeShell(result.metafile))) };
  const context = await esbuild.context({ ...options, plugins: [shell] });
  await context.watch();
  console.log('watching src/ for changes…');
} else {
  const result = await esbuild.build(options);
  await writeShell(result.metafile);
}
