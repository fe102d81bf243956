/** The bundle's layout state: how docker-save's manifest.json names its entries. */
import assert from 'node:assert/strict';
import { LayoutState } from '../../src/transport/bundle/layout-state.js';

describe('transport/bundle layout state', () => {
  it('reads manifest.json names as the tar reader gives entries (./ and repeated slashes dropped), and leaves unsafe ones unmatched', () => {
    const s = new LayoutState('save.tar', 'gzip');
    const manifest = [{ Config: './cfg//config.json', RepoTags: ['gcr.io/a/b:1'], Layers: ['./abc//layer.tar', 'def/./layer.tar', '../evil/layer.tar'] }];
    s.setDockerManifest(Buffer.from(JSON.stringify(manifest)));
    assert.equal(s.isDockerLayerName('abc/layer.tar'), true);
    assert.equal(s.isDockerLayerName('def/layer.tar'), true);
    assert.equal(s.isDockerConfigName('cfg/config.json'), true);
    assert.equal(s.isDockerLayerName('evil/layer.tar'), false);
  });
});
