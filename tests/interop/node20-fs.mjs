// node:fs plus a small globSync for Node 20. The suite calls it as globSync('**/checks.json', { cwd }) when it
// reads results back; this supports `**/`-prefixed and plain patterns whose last part may hold `*`.
import fs from 'node:fs';
import path from 'node:path';

export * from 'node:fs';
export default fs;

function toRegExp(glob) {
  return new RegExp('^' + glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]') + '$');
}

export function globSync(pattern, options = {}) {
  if (fs.globSync) return fs.globSync(pattern, options);
  const cwd = options.cwd ?? process.cwd();
  const anyDepth = pattern.startsWith('**/');
  const rest = anyDepth ? pattern.slice(3) : pattern;
  if (rest.includes('**')) throw new Error(`node20-fs globSync: unsupported pattern ${pattern}`);
  const parts = rest.split('/');
  const out = [];
  const walk = (rel, depthParts) => {
    // Try to match `parts` from here.
    const match = (base, i) => {
      if (i === parts.length) {
        out.push(base);
        return;
      }
      const dir = path.join(cwd, base);
      let entries;
      try {
        entries = fs.readdirSync(dir, { withFileTypes: true });
      } catch {
        return;
      }
      const re = toRegExp(parts[i]);
      for (const e of entries) {
        if (re.test(e.name) && (i === parts.length - 1 || e.isDirectory())) match(base ? `${base}/${e.name}` : e.name, i + 1);
      }
    };
    match(rel, 0);
    if (!depthParts) return;
    let entries;
    try {
      entries = fs.readdirSync(path.join(cwd, rel), { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) if (e.isDirectory()) walk(rel ? `${rel}/${e.name}` : e.name, true);
  };
  walk('', anyDepth);
  return out;
}
