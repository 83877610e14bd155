// Compares two vitest JSON reports of the same suite (CI runs it on two Node versions): every test,
// by file and full name, must be in both with the same outcome. Exits 1 and lists the differences.
//
//   node scripts/compare-test-runs.js first.json second.json
import console from 'node:console';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import process from 'node:process';

const [firstFile, secondFile] = process.argv.slice(2);
if (!firstFile || !secondFile) {
  console.error('usage: node scripts/compare-test-runs.js first.json second.json');
  process.exit(2);
}

/** "file > full test name" → status, for every test of a vitest JSON report. */
function outcomes(reportFile) {
  const report = JSON.parse(readFileSync(reportFile, 'utf8'));
  const byTest = new Map();
  for (const file of report.testResults) {
    for (const test of file.assertionResults) {
      byTest.set(`${path.relative(process.cwd(), file.name)} > ${test.fullName}`, test.status);
    }
  }
  return byTest;
}

const first = outcomes(firstFile);
const second = outcomes(secondFile);
const differences = [...new Set([...first.keys(), ...second.keys()])]
  .filter((test) => first.get(test) !== second.get(test))
  .map((test) => `  ${test}: ${first.get(test) ?? 'absent'} in ${path.basename(firstFile)}, ${second.get(test) ?? 'absent'} in ${path.basename(secondFile)}`);

if (differences.length > 0) {
  console.error(`ci: the two runs differ in ${differences.length} tests:\n${differences.join('\n')}`);
  process.exit(1);
}
console.log(`ci: both runs ran the same ${first.size} tests with the same outcomes`);
