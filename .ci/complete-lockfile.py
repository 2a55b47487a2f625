#!/usr/bin/env python3
# The npm registry reachable here lacks some other-platform builds that Biome and buf list as optional
# dependencies, so npm writes a lock without them and then `npm ci` calls that lock out of sync.
# Run this after changing dependencies: python3 .ci/complete-lockfile.py package-lock.json
import json, sys
path = sys.argv[1]
d = json.load(open(path))
p = d['packages']
platforms = {
  'android-arm64': (['android'], ['arm64'], None), 'android-x64': (['android'], ['x64'], None),
  'darwin-arm64': (['darwin'], ['arm64'], None), 'darwin-x64': (['darwin'], ['x64'], None),
  'linux-arm64-musl': (['linux'], ['arm64'], ['musl']), 'linux-x64-musl': (['linux'], ['x64'], ['musl']),
  'win32-arm64': (['win32'], ['arm64'], None), 'win32-x64': (['win32'], ['x64'], None),
  'linux-armv7': (['linux'], ['arm'], None),
}
added = []
for key, entry in list(p.items()):
    for dep, version in (entry.get('optionalDependencies') or {}).items():
        target = f'node_modules/{dep}'
        if target in p: continue
        suffix = next((s for s in platforms if dep.endswith(s)), None)
        if not suffix: continue
        os_, cpu, libc = platforms[suffix]
        item = {'version': version, 'cpu': cpu, 'optional': True, 'os': os_}
        if entry.get('dev'): item['dev'] = True
        if libc: item['libc'] = libc
        p[target] = item
        added.append(target)
d['packages'] = dict(sorted(p.items(), key=lambda kv: (kv[0] != '', kv[0])))
json.dump(d, open(path, 'w'), indent=2)
open(path, 'a').write('\n')
print('added', added)
