-- Argo CD health for hotfix.dev/HotfixRelease (argocd-cm: resource.customizations.health.hotfix.dev_HotfixRelease).
-- Read from the operator's own status: its phase, and observedGeneration so a change not yet seen is
-- never reported healthy. Waiting for people (approval, the queue) is Suspended, like a paused rollout.
local hs = {}
if obj.status == nil or obj.status.phase == nil then
  hs.status = "Progressing"
  hs.message = "waiting for hotfix-operator to pick the release up"
  return hs
end
local generation = obj.metadata and obj.metadata.generation
if generation ~= nil and (obj.status.observedGeneration == nil or obj.status.observedGeneration < generation) then
  hs.status = "Progressing"
  hs.message = "hotfix-operator has not yet seen the latest change"
  return hs
end
local phase = obj.status.phase
local outcome = {
  Succeeded = "Healthy",
  RolledBack = "Degraded", Failed = "Degraded", Rejected = "Degraded", Expired = "Degraded",
  AwaitingApproval = "Suspended", Queued = "Suspended",
  DrillPassed = "Healthy", DrillFailed = "Degraded",
}
hs.status = outcome[phase] or "Progressing"
hs.message = phase .. ": " .. (obj.status.message or "")
return hs
