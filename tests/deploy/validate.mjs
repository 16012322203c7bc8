// validate.mjs: checks rendered Kubernetes manifests against the Kubernetes
// OpenAPI schemas that the npm package kubernetes-models ships (pinned in
// package-lock.json), offline. It catches wrong types and missing required
// fields; it does not reject unknown fields (k8s_check.py asserts the fields
// that matter by name, so a misspelt probe fails there).
//
// usage: node validate.mjs RENDERED.yaml...   exit 1 when any object fails
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { parseAllDocuments } from 'yaml';

const require = createRequire(import.meta.url);
let failed = 0;
let checked = 0;
for (const file of process.argv.slice(2)) {
  const docs = parseAllDocuments(readFileSync(file, 'utf8'));
  for (const doc of docs) {
    if (doc.errors.length) {
      failed++;
      console.log(`  FAIL ${file}: YAML: ${doc.errors[0].message}`);
      continue;
    }
    const obj = doc.toJS();
    if (!obj) continue;
    const what = `${obj.kind} ${obj.metadata?.name} (${obj.apiVersion})`;
    // "apps/v1" -> kubernetes-models/apps/v1/Kind; "v1" -> kubernetes-models/v1/Kind
    let Model;
    try {
      Model = require(`kubernetes-models/${obj.apiVersion}/${obj.kind}`)[obj.kind];
    } catch {
      Model = undefined;
    }
    checked++;
    if (!Model) {
      failed++;
      console.log(`  FAIL ${what}: no schema for this apiVersion and kind`);
      continue;
    }
    try {
      new Model(obj).validate();
    } catch (e) {
      failed++;
      console.log(`  FAIL ${what}: ${e.message.split('\n').slice(0, 5).join('; ')}`);
    }
  }
}
console.log(`  schemas: ${checked - failed} of ${checked} objects valid`);
process.exit(failed || !checked ? 1 : 0);
