import { t } from '../i18n';

export function PlanList(props: { plan: string[] }) {
  if (props.plan.length === 0) return <p class="muted">{t('detail.no_plan')}</p>;
  return (
    <ol class="plan" data-testid="plan">
      {props.plan.map((step) => (
        <li>{step}</li>
      ))}
    </ol>
  );
}
